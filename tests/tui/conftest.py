"""One real run of the ``ci`` pipeline per kind of database, shared by the
tests here that only read it (each test that writes makes its own)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.store import pg
from tests.store.fixtures import pg_base, pg_url, sqlite_url, store, store_url
from tests.tui.helpers import project, run_ci

__all__ = ["Recorded", "pg_base", "pg_url", "recorded", "sqlite_url", "store", "store_url"]


@dataclass(frozen=True)
class Recorded:
    """A finished run of ``ci``: the project, the store's URL, the run."""

    root: Path
    url: str
    run_id: str


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def recorded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Recorded]:
    root = project(tmp_path_factory.mktemp(f"tui-{request.param}"))
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'store.db'}"
        yield Recorded(root, url, run_ci(root, url))
        return
    base: str = request.getfixturevalue("pg_base")
    with pg.schema_url(base) as url:
        yield Recorded(root, url, run_ci(root, url))
