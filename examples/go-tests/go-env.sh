# Sourced by the pipeline's tasks: Go's caches and the test binaries stay in
# the workspace (or where GOCACHE / GOPATH / GO_BUILD_DIR point), no network.
: "${GOCACHE:=$PWD/.work/cache}"
: "${GOPATH:=$PWD/.work/gopath}"
: "${GO_BUILD_DIR:=$PWD/.work/bin}"
: "${GOMODCACHE:=$GOPATH/pkg/mod}"
: "${HOME:=$PWD/.work}"
export GOCACHE GOPATH GO_BUILD_DIR GOMODCACHE HOME
if [ -n "${GO_BUILD_TAGS:-}" ]; then GO_TAGS="-tags=$GO_BUILD_TAGS"; else GO_TAGS=""; fi

