"""The systemd units in deploy/: `systemd-analyze verify` finds nothing to say,
and the command lines they start are ones stockade accepts."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy").glob("*.service"))
INSTALLED = "/opt/stockade/bin/stockade"  # where docs/production.md installs stockade


def _exec_start(unit: Path) -> list[str]:
    [line] = [x for x in unit.read_text().splitlines() if x.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def test_the_units_exist() -> None:
    assert {unit.name for unit in UNITS} == {"stockade.service", "stockade-worker@.service"}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: point it at a real
    # stockade (this interpreter's) instead of the install path, nothing else.
    program = tmp_path / "stockade"
    program.write_text(f'#!/bin/sh\nexec {sys.executable} -m stockade.cli.main "$@"\n')
    program.chmod(0o755)
    for unit in UNITS:
        text = unit.read_text()
        assert text.count(INSTALLED) == 1, unit.name
        (tmp_path / unit.name).write_text(text.replace(INSTALLED, str(program)))
    verify = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / unit.name) for unit in UNITS)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert verify.returncode == 0 and not (verify.stdout + verify.stderr).strip(), verify


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_the_command_line_is_one_stockade_accepts(unit: Path) -> None:
    argv = _exec_start(unit)
    assert argv[0] == INSTALLED
    # systemd's specifiers and $VARIABLES, as systemd would fill them (empty options)
    args = [arg.replace("%i", "build1") for arg in argv[1:] if not arg.startswith("$")]
    checked = subprocess.run(
        [sys.executable, "-m", "stockade.cli.main", *args, "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
