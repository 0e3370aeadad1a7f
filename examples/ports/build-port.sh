#!/bin/sh
# Build one port inside its chroot slot (see stockade.yaml):
#   1. empty the slot's build space (/construction, tmpfs) and /usr/local (tmpfs);
#   2. install the packages it needs, and what those need, from /packages;
#   3. make; make install into a staging directory;
#   4. package the staging directory as /packages/$PORT.tar.gz.
# The system (/usr, /etc, ...) is read-only; only those three places are writable.
set -eu
: "${PORT:?PORT is not set}"
NEEDS="${NEEDS:-}"
SRC="$STOCKADE_WORKSPACE/ports/$PORT"
BUILD=/construction/build
STAGE=/construction/stage
DEPS=/usr/local

rm -rf "$BUILD" "$STAGE" "$DEPS"/* 2>/dev/null || true
mkdir -p "$BUILD" "$STAGE/share/ports" "$DEPS/share/ports"

install_needs() {
    for dep in "$@"; do
        [ -e "$DEPS/share/ports/$dep.needs" ] && continue
        if [ ! -f "/packages/$dep.tar.gz" ]; then
            echo "$PORT: package $dep is missing from /packages" >&2
            exit 1
        fi
        echo "installing $dep"
        tar -xzmf "/packages/$dep.tar.gz" --no-overwrite-dir -C "$DEPS"
        # shellcheck disable=SC2046
        install_needs $(cat "$DEPS/share/ports/$dep.needs")
    done
}
# shellcheck disable=SC2086
install_needs $NEEDS

cp -R "$SRC/." "$BUILD/"
make -C "$BUILD" DEPS="$DEPS"
make -C "$BUILD" DEPS="$DEPS" DESTDIR="$STAGE" install
echo "$NEEDS" > "$STAGE/share/ports/$PORT.needs"
(cd "$STAGE" && tar -czf "/packages/$PORT.tar.gz.tmp" -- *)
mv "/packages/$PORT.tar.gz.tmp" "/packages/$PORT.tar.gz"
echo "packaged /packages/$PORT.tar.gz"
echo "package=$PORT.tar.gz" >> "$STOCKADE_OUTPUT"
