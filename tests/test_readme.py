"""The README's Python example runs as printed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README has no Python example"
    for code in blocks:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=tmp_path, timeout=60, check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        expected = re.findall(r"# (.+)$", code.strip().splitlines()[-1])
        if expected:
            assert proc.stdout.strip() == expected[0].strip()


def test_readme_opens_with_make_run_and_make_test() -> None:
    head = (ROOT / "README.md").read_text().split("##", 1)[0]
    assert "make run" in head and "make test" in head
