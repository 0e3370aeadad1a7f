#!/bin/sh
# Upgrade a worker under a running job: the job survives the worker's death
# and the worker started again under the same name takes it over.
#
#   sh examples/reattach/upgrade.sh            (from the repository's root)
#
# Uses a throwaway data directory (and SQLite store in it) unless
# STOCKADE_DATA_DIR is set. Prints the job's log and its attempts: one
# attempt, succeeded, every line once.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
stockade=${STOCKADE:-stockade}
export STOCKADE_DATA_DIR="${STOCKADE_DATA_DIR:-$(mktemp -d)}"
worker() {
    $stockade worker --reattach --name upgrade-demo --slots 1 --poll 0.1 --lease 10s \
        >>"$STOCKADE_DATA_DIR/worker.log" 2>&1 &
    echo $!
}

job=$($stockade submit -c "$here/stockade.yaml" ticker --input '{"lines": 20}')
old=$(worker)
until $stockade logs "$job" 2>/dev/null | grep -q 'tick 2'; do sleep 0.1; done
kill -KILL "$old"        # the old version dies; the job runs on, spooled
wait "$old" 2>/dev/null || true
sleep 1                  # ...the new version is installed meanwhile...
new=$(worker)            # same --name, same data dir: it reattaches
until $stockade show "$job" | grep -q '^state  *succeeded'; do sleep 0.2; done
kill -TERM "$new"
wait "$new" || true
$stockade logs "$job"
$stockade show "$job" | grep -E '^(state|attempts) '
