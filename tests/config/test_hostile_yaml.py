"""Hostile config files: alias bombs and deep nesting are refused with a line, quickly.

The files are generated here. The bombs run through the real `stockade
validate` in a subprocess with a generous timeout, so a loader that expands
them fails the test by timing out rather than by hanging the suite.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stockade.config import load
from stockade.config.yamldoc import MAX_DEPTH, MAX_VALUES
from tests.config.helpers import problems, write

#: Far above the fraction of a second a refusal takes; an expanding loader
#: needs minutes (and gigabytes) for these files.
DID_NOT_HANG = 20


def laughs(levels: int, width: int = 9) -> str:
    """Billion laughs: each anchor is a list of ``width`` aliases of the one before."""
    lines = ["version: 1", "x-a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"x-a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    lines.append("tasks: {t: {run: echo}}")
    return "\n".join(lines) + "\n"


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stockade.cli.main", "validate", str(path)],
        capture_output=True, text=True, timeout=DID_NOT_HANG, check=False,
    )  # fmt: skip


def test_billion_laughs_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "stockade.yaml"
    text = laughs(9)
    path.write_text(text)
    assert path.stat().st_size < 600
    done = validate(path)
    assert (done.returncode, done.stdout) == (1, "")
    assert "Traceback" not in done.stderr
    first = done.stderr.splitlines()[0]
    line = int(first.removeprefix(f"{path}:").split(":")[0])
    assert text.splitlines()[line - 1].startswith("x-a")  # the key whose aliases overflow
    assert first.endswith(
        f"malformed YAML: the file expands to more than {MAX_VALUES} values "
        "(aliases count as everything they repeat)"
    )


@pytest.mark.parametrize(
    ("opening", "closing"),
    [("[", "]"), ("{a: ", "}"), ("- ", "")],
    ids=["flow-list", "flow-map", "block"],
)
def test_deep_nesting_is_refused_with_its_line(tmp_path: Path, opening: str, closing: str) -> None:
    depth = 20_000
    if opening == "- ":
        # Block nesting is indented, so the file grows with the square of the depth:
        # 2,000 levels (4 MB) are still twice Python's recursion limit.
        depth = 2_000
        nested = "".join(f"\n{'  ' * i}- " for i in range(depth)) + "x"
    else:
        nested = opening * depth + "1" + closing * depth
    path = tmp_path / "stockade.yaml"
    path.write_text(f"version: 1\ntasks: {{t: {{run: echo}}}}\nx-deep: {nested}\n")
    done = validate(path)
    assert (done.returncode, done.stdout) == (1, "")
    assert "Traceback" not in done.stderr and "RecursionError" not in done.stderr
    line = done.stderr.splitlines()[0]
    assert line.startswith(f"{path}:")
    assert line.endswith(f"malformed YAML: nested more than {MAX_DEPTH} levels deep")


def test_aliases_cannot_nest_past_the_depth_either(tmp_path: Path) -> None:
    # Each anchor holds the one before 50 levels down: few levels written, very many built.
    lines = ["version: 1", "tasks: {t: {run: echo}}", "x-0: &n0 1"]
    for i in range(1, 40):
        lines.append(f"x-{i}: &n{i} " + "[" * 50 + f"*n{i - 1}" + "]" * 50)
    (problem,) = problems(write(tmp_path, "\n".join(lines) + "\n"))
    assert problem.message == f"malformed YAML: nested more than {MAX_DEPTH} levels deep"
    assert problem.line == 5  # x-2: 50 levels, then x-1's 50, then x-0


def test_nested_merges_are_applied_once_per_mapping(tmp_path: Path) -> None:
    # Flattening that copied merged pairs into every merging node (PyYAML
    # 6.0 and 6.0.1) would make 9 ** 9 pairs here; each key counts once.
    lines = ["version: 1", "x-m0: &m0 {timeout: 5s, env: {A: '1'}}"]
    for i in range(1, 10):
        lines.append(f"x-m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * 9) + "]}")
    lines.append("tasks: {t: {<<: *m9, run: echo}}")
    path = write(tmp_path, "\n".join(lines) + "\n")
    done = validate(path)
    assert done.returncode == 0, done.stderr
    task = load(path, env={}).tasks["t"]
    assert (task.timeout, task.env) == (5.0, {"A": "1"})


def test_merge_order_and_a_merge_of_itself(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        x-a: &a {timeout: 1s, description: from a}
        x-b: &b {timeout: 2s, max_attempts: 3}
        tasks:
          t: {<<: [*a, *b], run: echo, max_attempts: 2}
        """,
    )
    task = load(path, env={}).tasks["t"]
    assert (task.timeout, task.description, task.max_attempts) == (1.0, "from a", 2)
    two = "x-a: &a {timeout: 1s}\nx-b: &b {timeout: 2s}\ntasks:\n  t:\n    <<: *a\n    <<: *b\n    run: x\n"
    assert load(write(tmp_path, two), env={}).tasks["t"].timeout == 1.0  # as PyYAML merges
    (problem,) = problems(write(tmp_path, "x-a: &a {<<: *a}\ntasks: {}\n"))
    assert (problem.line, problem.message) == (1, "malformed YAML: a merge (<<) refers to itself")
