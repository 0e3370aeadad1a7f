#!/bin/sh
# The build task's `go test -exec` program: go runs it, in the package's
# directory, in place of each test binary it has built (`go-collect.sh
# BINARY FLAGS...`). Rather than run the binary it keeps it, hard-linked
# (copied across file systems) to where the test jobs look for it
# (go_test_binary in go-env.sh), so one `go test` builds every package's
# test binary as `go test -c` does for one package.
. "$GO_MODULE_DIR/go-env.sh" || exit
binary=$(go_test_binary "$PWD") || exit
mkdir -p "${binary%/*}" || exit
ln -f "$1" "$binary" 2>/dev/null || cp -f "$1" "$binary"
