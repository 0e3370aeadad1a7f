"""``examples/keys`` end to end: real workers, a real store, the real CLI.

Two ``stockade worker`` processes of two slots each run deploys of two
environments; every deploy appends ``start ENV`` and ``end ENV`` to one file
as it runs, so two deploys of one environment that overlapped would show
two starts in a row. The CLI's unique keys and ``--after`` run on the same
store.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from stockade.config import load
from stockade.engine.jobspec import new_job
from stockade.store import open_store
from tests.engine.procs import STOCKADE, start_worker, stop
from tests.store.fixtures import pg_base, pg_url

__all__ = ["pg_base", "pg_url"]  # fixtures used here

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keys" / "stockade.yaml"


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STOCKADE_DATABASE_URL=url)
    return subprocess.run(
        [*STOCKADE, "submit", "--config", str(EXAMPLE), *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_deploys_of_one_environment_never_overlap(pg_url: str, tmp_path: Path) -> None:
    log = tmp_path / "deploys.log"
    config = load(EXAMPLE)
    store = open_store(pg_url)
    deploys = store.jobs.submit([
        new_job("deploy", config.task("deploy"), config=config,
                input={"env": env, "log": str(log)})
        for env in ("prod", "staging", "prod", "prod", "staging", "prod")
    ])  # fmt: skip
    assert store.queries.job(deploys[2]).waiting == "concurrency key deploy-prod is at its limit 1"

    first = _cli(pg_url, "nightly")
    again = _cli(pg_url, "nightly")
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert again.stdout == first.stdout
    assert again.stderr.strip() == f"already queued: {first.stdout.strip()}"
    after = _cli(pg_url, "notify", "--after", deploys[-1])
    assert after.returncode == 0, after.stderr
    unknown = _cli(pg_url, "notify", "--after", "0" * 19)
    assert unknown.returncode == 2 and "--after" in unknown.stderr

    workers = [
        start_worker(pg_url, "--slots", "2", "--poll", "0.1", log=tmp_path / f"w{i}.log")
        for i in range(2)
    ]
    notify = after.stdout.strip()
    try:
        deadline = time.monotonic() + 60
        while store.queries.job(notify).state.value != "succeeded":
            assert time.monotonic() < deadline, store.queries.count_by_state()
            time.sleep(0.1)
    finally:
        for worker in workers:
            stop(worker)
    assert all(store.queries.job(j).state.value == "succeeded" for j in deploys)
    lines = log.read_text().split("\n")[:-1]
    for env in ("prod", "staging"):
        marks = [line.split()[0] for line in lines if line.endswith(f" {env}")]
        assert marks == ["start", "end"] * (len(marks) // 2), marks
    # the two environments did run side by side: keys are per environment
    assert len(lines) == 12
    store.close()
