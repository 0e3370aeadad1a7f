"""Becoming a child subreaper: the C extension's ``prctl`` and the ctypes
fallback do the same, checked by asking the kernel in a process of its own
(the flag is process-wide and cannot be unset by the test process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: Sets the flag one way, then reads it back with PR_GET_CHILD_SUBREAPER (37).
PROBE = """
import ctypes, sys
from stockade.sandbox import proctree
done = getattr(proctree, sys.argv[1])()
flag = ctypes.c_int(-1)
ctypes.CDLL(None).prctl(37, ctypes.byref(flag), 0, 0, 0)
print(done, flag.value, proctree.is_subreaper())
"""


def _probe(way: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, way], capture_output=True, text=True, check=True, timeout=30
    )
    return out.stdout.strip()


@pytest.mark.parametrize("way", ["set_subreaper_native", "set_subreaper_ctypes"])
def test_each_way_makes_the_process_a_subreaper(way: str) -> None:
    from stockade.sandbox import proctree

    if way == "set_subreaper_native" and proctree.set_subreaper_native() is None:
        pytest.skip("the C spawn extension is not built here")
    assert _probe(way) == "True 1 False"


def test_enable_subreaper_sets_the_flag_and_says_so() -> None:
    assert _probe("enable_subreaper") == "True 1 True"
