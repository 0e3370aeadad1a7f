"""Wrong URLs, unreachable databases and unknown jobs are one clear line each."""

from __future__ import annotations

import pytest

from stockade.errors import JobNotFound, StoreError, StoreUnavailable, StoreURLError
from stockade.store import Store, open_store
from stockade.store.url import resolve_url, safe_url
from tests.store.helpers import new


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root@localhost/x", "unsupported database 'mysql'"),
        ("not a url", "is not valid"),
        ("postgresql://u:hunter2@host:notaport/db", "is not valid"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(StoreURLError, match=message) as info:
        open_store(url)
    assert "hunter2" not in str(info.value)
    assert "\n" not in str(info.value)


def test_unreachable_postgres_is_one_line_without_password() -> None:
    with pytest.raises(StoreUnavailable) as info:
        open_store("postgresql://postgres:hunter2@127.0.0.1:1/test")
    text = str(info.value)
    assert text.startswith("cannot use the database postgresql://postgres:***@127.0.0.1:1/test")
    assert "hunter2" not in text and "\n" not in text


def test_url_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("STOCKADE_DATA_DIR", "/srv/data")
    monkeypatch.delenv("STOCKADE_DATABASE_URL", raising=False)
    assert safe_url(resolve_url()) == "sqlite:////srv/data/stockade.db"
    assert safe_url(resolve_url(None, "/x")) == "sqlite:////x/stockade.db"
    monkeypatch.setenv("STOCKADE_DATABASE_URL", "postgres://u@h/db")
    assert safe_url(resolve_url(None, "/x")) == "postgresql://u@h/db"
    assert safe_url(resolve_url("sqlite:///y.db")) == "sqlite:///y.db"


def test_unknown_and_ambiguous_job_refs(store: Store) -> None:
    with pytest.raises(JobNotFound, match="no job 'nope' in the store"):
        store.queries.job("nope")
    ids = store.jobs.submit([new(id="abcd0001"), new(id="abcd0002")])
    assert store.queries.job("abcd0001").id == ids[0]
    with pytest.raises(StoreError, match="ambiguous"):
        store.queries.job("abcd")
