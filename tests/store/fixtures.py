"""Store fixtures shared by the store, engine and end-to-end tests.

``store_url`` runs a test once on SQLite (a file in the test's data
directory) and once on PostgreSQL (a schema of its own, dropped afterwards),
so one behavioural suite covers both stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.store import Store, open_store
from tests.store import pg

__all__ = ["pg_base", "pg_url", "sqlite_url", "store", "store_url"]


@pytest.fixture(scope="session")
def pg_base() -> Iterator[str]:
    """A PostgreSQL server for the session: the machine's, or a throwaway one."""
    if pg.reachable(pg.DEFAULT_URL):
        yield pg.DEFAULT_URL
        return
    with pg.throwaway() as cluster:
        yield cluster.url


@pytest.fixture
def pg_url(pg_base: str) -> Iterator[str]:
    """A PostgreSQL URL whose connections see a fresh, empty schema."""
    with pg.schema_url(pg_base) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'stockade.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty store, once per kind of database."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open store with the current schema."""
    opened = open_store(store_url)
    yield opened
    opened.close()
