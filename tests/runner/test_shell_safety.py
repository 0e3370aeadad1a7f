"""Shell mode never lets an input value become shell syntax."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.runner.spec import RunSpec
from tests.runner.helpers import run_spec, sh

HOSTILE = [
    "$(touch {canary})",
    "`touch {canary}`",
    "; touch {canary}",
    "| touch {canary}",
    "a\ntouch {canary}",
    "'; touch {canary}; echo '",
    '"; touch {canary}; echo "',
    "*",
    "?[a-z]*",
    "-rf",
    "--help",
    "${{PATH}}",
    "&& touch {canary} &",
    "> {canary}",
    "\\",
    "",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_env_values_stay_data(tmp_path: Path, template: str) -> None:
    canary = tmp_path / "pwned"
    value = template.format(canary=canary)
    result, _ = run_spec(sh('printf "%s" "$INPUT_V"', workdir=str(tmp_path)), {"v": value})
    assert result.outputs["stdout"] == value
    assert not canary.exists()


@pytest.mark.parametrize("template", HOSTILE)
def test_args_values_stay_data(tmp_path: Path, template: str) -> None:
    canary = tmp_path / "pwned"
    value = template.format(canary=canary)
    spec = sh('printf "%s" "$1"', input_format="args", workdir=str(tmp_path))
    result, _ = run_spec(spec, {"v": value})
    assert result.outputs["stdout"] == value
    assert not canary.exists()


def test_argv_mode_never_uses_a_shell(tmp_path: Path) -> None:
    canary = tmp_path / "pwned"
    spec = RunSpec(argv=["echo", f"$(touch {canary})"], input_format="args")
    result, _ = run_spec(spec, {"x": f"; touch {canary}"})
    assert result.outputs["stdout"] == f"$(touch {canary}) ; touch {canary}\n"
    assert not canary.exists()
