"""`stockade submit` on an existing SQLite store, where it writes without
SQLAlchemy: the same output and errors as through the full store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from stockade.store import open_store
from tests.engine.test_cli_jobs import _run


def test_submit_prints_ids_in_input_order_and_stores_each_input(
    sqlite_url: str, tmp_path: Path
) -> None:
    open_store(sqlite_url).close()
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"n": n}) + "\n" for n in range(5)))
    bulk = _run("submit", "--inputs", "in.jsonl", "--", "true", url=sqlite_url, cwd=tmp_path)
    one = _run("submit", "-n", "2", "--priority", "3", "--", "true", url=sqlite_url, cwd=tmp_path)
    assert bulk.returncode == one.returncode == 0, bulk.stderr + one.stderr
    store = open_store(sqlite_url)
    try:
        listed = store.queries.jobs(oldest_first=True, limit=None)
        assert [job.id for job in listed] == bulk.stdout.split() + one.stdout.split()
        assert [job.input for job in listed] == [{"n": n} for n in range(5)] + [None, None]
        assert [job.priority for job in listed] == [0] * 5 + [3, 3]
    finally:
        store.close()


def test_a_store_at_another_revision_is_refused_with_the_full_stores_words(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(sqlite_url).close()
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE stockade_schema_version SET version_num = '0001'")
    conn.close()
    refused = _run("submit", "--", "true", url=sqlite_url, cwd=tmp_path)
    monkeypatch.setenv("STOCKADE_LITE", "0")
    full = _run("submit", "--", "true", url=sqlite_url, cwd=tmp_path)
    assert refused.returncode == full.returncode == 1
    assert refused.stderr == full.stderr
    assert "has schema 0001, this stockade needs" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
