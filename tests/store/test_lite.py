"""The driver-only reads of a SQLite store (``stockade.store.lite``): the same
statements as the Core builders in ``stockade.store.queries``, the same
records as the full store, and the full store whenever they cannot answer."""

from __future__ import annotations

import dataclasses
import itertools
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite

from stockade.errors import JobNotFound, StoreError
from stockade.runner.result import Outcome
from stockade.store import Store, open_store, queries
from stockade.store import lite as lite_mod
from stockade.store.lite import LiteStore, open_reader
from stockade.store.url import resolve_url, sqlite_file
from tests.store.helpers import new, result

STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def _core(stmt: Any) -> tuple[str, list[Any]]:
    compiled = stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"render_postcompile": True})
    return " ".join(compiled.string.split()), [compiled.params[k] for k in compiled.positiontup]


def _lite(query: tuple[str, list[Any]]) -> tuple[str, list[Any]]:
    return " ".join(query[0].split()), query[1]


def _shapes() -> list[tuple[str, tuple[Any, ...]]]:
    listings = [
        ("jobs_listing", (STATES[:n], task, run, limit, oldest))
        for n, task, run, limit, oldest in itertools.product(
            range(len(STATES) + 1), (None, "t"), (None, "r"), (None, 50), (False, True)
        )
    ]
    chunks = [
        ("chunks_of", ("j", after, attempt, 1000))
        for after, attempt in itertools.product((0, 7), (None, 2))
    ]
    singles = [(name, ("j",)) for name in ("job_by_id", "attempts_of", "outputs_of")]
    return [*listings, *chunks, *singles, ("live_offers", ()), ("now_query", ())]


@pytest.mark.parametrize(("name", "args"), _shapes())
def test_each_statement_is_the_core_builders_compiled_for_sqlite(
    name: str, args: tuple[Any, ...]
) -> None:
    builder: Callable[..., Any] = getattr(queries, name)
    assert _lite(getattr(lite_mod, name)(*args)) == _core(builder(*args))


def test_the_url_shortcut_names_the_file_resolve_url_names(tmp_path: Path) -> None:
    for given in (
        None,
        f"sqlite:///{tmp_path}/a.db",
        "sqlite:///relative/b.db",
        f"sqlite+pysqlite:///{tmp_path}/c.db",
    ):
        path = sqlite_file(given, tmp_path)
        assert path is not None
        assert str(path) == resolve_url(given, tmp_path).database
    for other in ("postgresql://u@h/db", "sqlite://", "sqlite:///:memory:", "sqlite:///a%20b.db"):
        assert sqlite_file(other, tmp_path) is None


def _fill(store: Store) -> dict[str, str]:
    """Jobs in every state, with attempts, outputs, logs, a sandbox, a run filter."""
    ids = store.jobs.submit(
        [new("a"), new("b", input={"x": [1, 2]}), new("a", sandbox="bwrap"), new("c")]
    )
    store.jobs.submit([new("a", priority=1) for _ in range(3)])
    store.journal.register_worker("w", 1, sandboxes=["local"])
    claims = store.jobs.claim("w", 2, 30)
    store.jobs.finish(claims[0], result(claims[0], Outcome.SUCCEEDED, outputs={"k": "v"}))
    chunk = {"job_id": claims[0].job_id, "attempt": 1, "stream": "stdout", "text": "one\n"}
    store.journal.append_logs([chunk | {"time": 0.0}])
    store.jobs.finish(claims[1], result(claims[1], Outcome.FAILED, exit_code=3))
    store.jobs.cancel([ids[3]])
    return {"done": claims[0].job_id, "failed": claims[1].job_id, "waiting": ids[2]}


def _same(a: Any, b: Any) -> None:
    def text(value: Any) -> str:
        if isinstance(value, list):
            return json.dumps([text(v) for v in value])
        if dataclasses.is_dataclass(value):  # to_dict where a record has one
            value = value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value)
        return json.dumps(value, sort_keys=True)

    assert text(a) == text(b)


def test_every_read_gives_what_the_full_store_gives(sqlite_url: str) -> None:
    full = open_store(sqlite_url)
    marks = _fill(full)
    reader = open_reader(sqlite_url)
    try:
        assert isinstance(reader, LiteStore)
        lite, core = reader.queries, full.queries
        for n, task, oldest, limit in itertools.product(
            range(len(STATES) + 1), (None, "a"), (False, True), (None, 2)
        ):
            keys: dict[str, Any] = {"states": STATES[:n], "task": task, "limit": limit}
            _same(lite.jobs(oldest_first=oldest, **keys), core.jobs(oldest_first=oldest, **keys))
        for job_id in marks.values():
            _same(lite.job(job_id), core.job(job_id))
            _same(lite.job(job_id[:-2]), core.job(job_id[:-2]))
            _same(lite.attempts(job_id), core.attempts(job_id))
            _same(lite.outputs(job_id), core.outputs(job_id))
            for attempt in (None, 1, 2):
                _same(lite.logs(job_id, attempt=attempt), core.logs(job_id, attempt=attempt))
        assert lite.job(marks["waiting"]).waiting == "no live worker offers sandbox 'bwrap'"
        assert lite.logs(marks["done"])[0].text == "one\n"
        assert abs(lite.now() - core.now()) < 60
    finally:
        reader.close()
        full.close()


def test_what_it_cannot_answer_the_full_store_answers(sqlite_url: str) -> None:
    full = open_store(sqlite_url)
    _, b = full.jobs.submit([new(id="abcd1"), new(id="abcd2")])
    reader = open_reader(sqlite_url)
    try:
        with pytest.raises(StoreError, match="ambiguous") as ambiguous:
            reader.queries.job("abcd")
        with pytest.raises(StoreError) as expected:
            full.queries.job("abcd")
        assert str(ambiguous.value) == str(expected.value)
        with pytest.raises(JobNotFound):
            reader.queries.job("zzzzz")
        assert reader.queries.resolve("abcd2") == b
    finally:
        reader.close()
        full.close()


def test_other_stores_and_old_schemas_get_the_full_store(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(store_url).close()  # the schema made
    reader = open_reader(store_url)  # PostgreSQL: the full store; SQLite: lite
    reader.close()
    assert isinstance(reader, LiteStore) == store_url.startswith("sqlite")
    monkeypatch.setenv("STOCKADE_LITE", "0")
    plain = open_reader(store_url)
    plain.close()
    assert isinstance(plain, Store)
    monkeypatch.delenv("STOCKADE_LITE")
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:  # another revision: the full store refuses it
        conn.execute("CREATE TABLE stockade_schema_version (version_num VARCHAR(32))")
        conn.execute("INSERT INTO stockade_schema_version VALUES ('0001')")
    conn.close()
    with pytest.raises(StoreError, match="stockade db upgrade"):
        open_reader(f"sqlite:///{old}")
    fresh = open_reader(f"sqlite:///{tmp_path / 'new' / 'stockade.db'}")  # created, as before
    try:
        assert isinstance(fresh, Store) and fresh.queries.jobs() == []
    finally:
        fresh.close()
