# Sourced by the pipeline's tasks: Go's caches and the test binaries stay in
# the workspace (or where GOCACHE / GOPATH / GO_BUILD_DIR point), no network.
: "${GOCACHE:=$PWD/.work/cache}"
: "${GOPATH:=$PWD/.work/gopath}"
: "${GO_BUILD_DIR:=$PWD/.work/bin}"
: "${GOMODCACHE:=$GOPATH/pkg/mod}"
: "${HOME:=$PWD/.work}"
: "${GO_MODULE_DIR:=$PWD}"
export GOCACHE GOPATH GO_BUILD_DIR GOMODCACHE HOME GO_MODULE_DIR
if [ -n "${GO_BUILD_TAGS:-}" ]; then GO_TAGS="-tags=$GO_BUILD_TAGS"; else GO_TAGS=""; fi

# The test binary of the package in directory $1: its path below the module,
# under GO_BUILD_DIR, then _pkg.test (go's ./... skips directories whose name
# starts with "_", so no package's path can collide with it).
go_test_binary() {
  printf '%s%s/_pkg.test\n' "$GO_BUILD_DIR" "${1#"$GO_MODULE_DIR"}"
}
