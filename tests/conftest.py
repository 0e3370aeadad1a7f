"""Shared fixtures: every test gets its own data directory, and the suite
checks at the end that nothing of stockade's is left behind."""

from __future__ import annotations

import contextlib
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


@pytest.fixture(autouse=True)
def _reap_adopted_orphans() -> None:
    """Reap the zombies earlier tests left to this process before each test.

    The test process is a subreaper (above), so what a SIGKILLed worker or a
    killed test leaves (its fence, a spool shim) is adopted here when it
    exits; init would reap it, this process must. Tests that check that no
    killed orphan of *their* job is left as a zombie then see only their own.
    """
    for tid in os.listdir(f"/proc/{os.getpid()}/task"):
        try:
            with open(f"/proc/{os.getpid()}/task/{tid}/children", encoding="ascii") as fh:
                children = fh.read().split()
        except FileNotFoundError:  # a thread that has just ended
            continue
        for pid in children:
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii") as st:
                    data = st.read()
            except FileNotFoundError:
                continue
            if data[data.rfind(")") + 2] == "Z":
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(int(pid), os.WNOHANG)


@pytest.fixture(scope="session", autouse=True)
def _nothing_left_behind() -> Iterator[None]:
    yield
    root = cgroup2_root()
    if root is None or not (root / "stockade").exists():
        return
    mine = [p for p in (root / "stockade").iterdir() if p.name.startswith(f"{os.getpid()}-")]
    assert not mine, f"slot cgroups left behind: {mine}"
