"""`stockade submit --inputs` and `stockade prune` as users run them (both stores)."""

from __future__ import annotations

import json
from pathlib import Path

from stockade.engine.housekeeping import remove_files
from stockade.store import open_store
from tests.engine.test_cli_jobs import _run

CONFIG = "version: 1\ntasks:\n  t:\n    run: 'true'\n    max_attempts: 1\n"


def test_bulk_submit_stores_whole_chunks_and_prune_deletes_in_batches(
    store_url: str, tmp_path: Path
) -> None:
    (tmp_path / "stockade.yaml").write_text(CONFIG)
    lines = [json.dumps({"n": i}) for i in range(1100)]
    lines[1049] = '{"n": 1049,'  # line 1050: the second chunk is refused whole
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    bad = _run("submit", "t", "--inputs", "in.jsonl", url=store_url, cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.startswith("stockade: error: line 1050: not valid JSON")
    assert "(1000 job(s) stored; nothing from line 1001 on)" in bad.stderr
    assert len(bad.stderr.splitlines()) == 1
    ids = bad.stdout.split()
    assert len(ids) == 1000
    store = open_store(store_url)
    try:
        jobs = store.queries.jobs(limit=None)
        assert {job.id: job.input for job in jobs} == {ids[i]: {"n": i} for i in range(1000)}
        store.jobs.cancel(ids[:700])
        # (--dry-run counts with Retention.count: tests/store/test_retention.py)
        pruned = _run("prune", "--older-than", "0s", "--batch", "300", url=store_url)
        assert pruned.stdout.startswith("deleted 700 job(s) and 0 run(s)"), pruned.stderr
        assert sorted(job.id for job in store.queries.jobs(limit=None)) == sorted(ids[700:])
    finally:
        store.close()


def test_pruned_jobs_files_go_and_links_are_not_followed(tmp_path: Path) -> None:
    logs = tmp_path / "data" / "logs"
    logs.mkdir(parents=True)
    outside = tmp_path / "precious"
    outside.write_text("keep me")
    for name in ("abc123.1.jsonl", "abc123.2.jsonl", "other.1.jsonl"):
        (logs / name).write_text("{}")
    (logs / "abc123.3.jsonl").symlink_to(outside)
    assert remove_files(tmp_path / "data", [("abc123", 4), ("../x", 1)]) == 3
    assert sorted(p.name for p in logs.iterdir()) == ["other.1.jsonl"]
    assert outside.read_text() == "keep me"
