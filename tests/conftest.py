"""Shared fixtures: every test gets its own data directory, and the suite
checks at the end that nothing of stockade's is left behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.sandbox import proctree
from stockade.sandbox.cgroup import cgroup2_root


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data = tmp_path / "data"
    monkeypatch.setenv("STOCKADE_DATA_DIR", str(data))
    yield data


@pytest.fixture(scope="session", autouse=True)
def _subreaper() -> None:
    # The CLI and the worker make themselves subreapers; so does the test
    # process, so killed orphans re-parent here and reaping can be checked.
    proctree.enable_subreaper()


@pytest.fixture(scope="session", autouse=True)
def _nothing_left_behind() -> Iterator[None]:
    yield
    root = cgroup2_root()
    if root is None or not (root / "stockade").exists():
        return
    mine = [p for p in (root / "stockade").iterdir() if p.name.startswith(f"{os.getpid()}-")]
    assert not mine, f"slot cgroups left behind: {mine}"
