"""Mistakes a new user makes get a hint that says what to type instead
(real CLI subprocesses; every message is one line, exit 2, nothing ran)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["exec", "touch", "marker"], "unexpected 'marker': to run a command, put -- before it: "
         "stockade exec [OPTIONS] -- touch marker"),
        (["exec", "--timout", "3", "--", "touch", "marker"],
         "no such option '--timout'; did you mean '--timeout'?"),
        (["exec", "--timout=3", "--", "touch", "marker"],
         "no such option '--timout'; did you mean '--timeout'?"),
        (["exec", "touch", "-c", "marker", "--nope"], "no such option '--nope'; to run a command "
         "with its own options, put -- before it: stockade exec -- touch --nope"),
        (["exec", "--sandbox", "bwarp", "--", "touch", "marker"],
         "--sandbox bwarp: no such backend; did you mean 'bwrap'? (backends: local, bwrap"),
        (["serve", "--prot", "1"], "no such option '--prot'; did you mean '--port'?"),
        (["run", "--jnit", "x.xml"], "no such option '--jnit'; did you mean '--junit'?"),
        (["jobs", "--stat", "queued"], "no such option '--stat'; did you mean '--state'?"),
        (["submit", "--timout", "3", "--", "true"], "no such option '--timout'"),
        (["shwo", "1a2b"], "no such command 'shwo'; did you mean 'show'?"),
        (["exec", "echo", "\x1b[2J"], "unexpected '\\x1b[2J': to run a command, put -- before it: "
         "stockade exec [OPTIONS] -- 'echo' '\\x1b[2J'"),
        (["exec", "echo", "a b"], "unexpected 'a b': to run a command, put -- before it: "
         "stockade exec [OPTIONS] -- echo 'a b'"),
        (["--hepl"], "no such option '--hepl'; did you mean '--help'?"),
    ],
)  # fmt: skip
def test_a_mistake_gets_a_hint(tmp_path: Path, args: list[str], line: str) -> None:
    proc = subprocess.run(
        [*STOCKADE, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("stockade: error: " + line), proc.stderr
    assert not (tmp_path / "marker").exists()


def test_a_sandbox_missing_from_the_config_lists_the_valid_ones(tmp_path: Path) -> None:
    (tmp_path / "stockade.yaml").write_text(
        "version: 1\nsandboxes:\n  isolated: {backend: bwrap}\ntasks:\n  t: {run: 'true'}\n"
    )
    proc = subprocess.run(
        [*STOCKADE, "exec", "--sandbox", "isolatd", "--", "touch", "marker"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "stockade: error: unknown sandbox 'isolatd'; did you mean 'isolated'? "
        "(profiles and backends: isolated, local, bwrap, chroot, oci, mock)"
    ]
    assert not (tmp_path / "marker").exists()
