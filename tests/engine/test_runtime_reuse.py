"""A worker hands a job's runtime directory to a later job only when clean.

Real stores, a real worker with one slot (jobs run one after another in
the same slot cgroup), real files.
"""

from __future__ import annotations

from stockade.engine.worker import Worker
from stockade.store import Store
from tests.engine.helpers import state, submit, until, with_worker

_SHOW = 'echo "dir=$(dirname "$STOCKADE_OUTPUT")"; ls -A "$(dirname "$STOCKADE_OUTPUT")"; cat "$STOCKADE_OUTPUT" "$STOCKADE_STATE"'


def _text(store: Store, job_id: str) -> str:
    return "".join(chunk.text for chunk in store.queries.logs(job_id))


def _dir(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("dir="))


def test_the_next_job_gets_the_directory_emptied_or_a_new_one(store: Store, store_url: str) -> None:
    async def body(worker: Worker) -> None:
        # One at a time: a job claimed while the last one runs is prepared
        # ahead (staged), before that one's directory is handed back.
        ids = []
        for line in (
            f'{_SHOW}; echo "k=from-first" >> "$STOCKADE_OUTPUT"',
            f'{_SHOW}; echo \'leak\' > "$(dirname "$STOCKADE_OUTPUT")/left"',
            _SHOW,
        ):
            ids.append(submit(store, line))
            await until(lambda j=ids[-1]: state(store, j) == "succeeded", what=ids[-1])
        first, second, third = (_text(store, j) for j in ids)
        assert (store.queries.outputs(ids[0]) or {}).get("k") == "from-first"
        # The first job's outputs are gone from the file the second one gets.
        assert _dir(second) == _dir(first)
        assert second.splitlines()[1:] == ["output.env", "state.json", "{}"], second
        assert "k" not in (store.queries.outputs(ids[1]) or {})
        # The second left a file there: the third gets a new directory without it.
        assert _dir(third) != _dir(second)
        assert third.splitlines()[1:] == ["output.env", "state.json", "{}"], third

    with_worker(store_url, body, slots=1)
