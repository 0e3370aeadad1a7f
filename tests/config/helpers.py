"""Helpers for config tests: write a real file, load it, collect problems."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from stockade.config import ConfigValidationError, Problem, load


def write(directory: Path, text: str, name: str = "stockade.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path, env: Mapping[str, str] | None = None) -> list[Problem]:
    with pytest.raises(ConfigValidationError) as exc:
        load(path, env=env or {})
    return exc.value.problems


def located(path: Path, env: Mapping[str, str] | None = None) -> list[tuple[int | None, str]]:
    """``(line, key.path)`` of every problem, in order."""
    return [(p.line, p.path) for p in problems(path, env)]
