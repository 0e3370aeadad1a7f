"""``stockade show PREFIX``: an ambiguous or too short prefix says so and
lists what it matches, on SQLite and PostgreSQL (real CLI subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys

from stockade.store import open_store
from tests.store.helpers import new

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


def _show(ref: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STOCKADE, "show", ref],
        env=dict(os.environ, STOCKADE_DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_show_prefix_ambiguous_short_or_unique(store_url: str) -> None:
    store = open_store(store_url)
    try:
        store.jobs.submit([new(id=i) for i in ("1a2b0001", "1a2b0002", "1a9c0003", "2f000004")])
    finally:
        store.close()

    several = _show("1a", store_url)
    assert several.returncode == 1
    assert several.stderr.splitlines() == [
        "stockade: error: job id prefix '1a' is ambiguous: it matches "
        "1a9c0003, 1a2b0002, 1a2b0001; give more characters"
    ]
    two = _show("1a2b", store_url)
    assert two.returncode == 1 and "it matches 1a2b0002, 1a2b0001;" in two.stderr

    short = _show("2f", store_url)
    assert short.returncode == 1
    assert "'2f' is too short: give at least 4 characters (it matches 2f000004)" in short.stderr

    unique = _show("1a9c", store_url)
    assert unique.returncode == 0, unique.stderr
    assert "job       1a9c0003" in unique.stdout
    missing = _show("9999", store_url)
    assert missing.returncode == 1 and "no job '9999' in the store" in missing.stderr
