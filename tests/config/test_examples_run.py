"""The shipped examples do what they say when the runner runs them.

This crosses into the runner on purpose: an example that validates but does
not run would mislead every newcomer (`make run` executes ``hello``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from stockade.config import load
from stockade.runner.attempt import run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    ("relative", "task", "value", "outputs"),
    [
        ("stockade.yaml", "hello", {"name": "newcomer"}, {"greeting": "Hello, newcomer"}),
        ("stockade.yaml", "count", {"text": "a b c"}, {"words": 3}),
        ("full/stockade.yaml", "sum", {"numbers": [1, 2, 3]}, {"sum": 6}),
        ("full/stockade.yaml", "report", {"b": 1, "a": 2}, {"keys": ["a", "b"]}),
        ("full/stockade.yaml", "list-args", {"b": "x", "a": "y"}, {"lines": ["y", "x"]}),
        ("full/stockade.yaml", "check-tmp", None, {"success": True}),
        ("minimal/stockade.yaml", "greet", {"name": "world"}, {"stdout": "Hello, world!\n"}),
    ],
)
def test_example_runs(
    relative: str, task: str, value: Any, outputs: dict[str, Any], tmp_path: Path
) -> None:
    config = load(EXAMPLES / relative, env={})
    spec = config.run_spec(task, data_dir=tmp_path)
    result = asyncio.run(run(spec, value))
    assert result.outcome == "succeeded"
    assert outputs.items() <= result.outputs.items()
