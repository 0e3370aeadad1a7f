"""``stockade tui`` and ``run --tui`` as commands: one-line errors, and
Textual imported only when the TUI runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.tui.conftest import Recorded
from tests.tui.helpers import STOCKADE, project


def test_nothing_to_show_and_clashing_flags_are_one_line_errors(tmp_path: Path) -> None:
    root = project(tmp_path)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    empty = subprocess.run([*STOCKADE, "tui", "--database-url", url], cwd=root,
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert empty.returncode == 2
    assert empty.stderr == "stockade: error: no run in the store to show: `stockade run` first\n"
    unknown = subprocess.run([*STOCKADE, "tui", "nope", "--database-url", url], cwd=root,
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert unknown.returncode == 1 and len(unknown.stderr.splitlines()) == 1
    assert "nope" in unknown.stderr
    clash = subprocess.run([*STOCKADE, "run", "ci", "--tui", "--plain"], cwd=root,
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert clash.returncode == 2
    assert clash.stderr == "stockade: error: --tui shows the run itself: drop --plain\n"
    not_a_terminal = subprocess.run([*STOCKADE, "run", "ci", "--tui"], cwd=root,
                                    capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert not_a_terminal.returncode == 2
    assert not_a_terminal.stderr.startswith("stockade: error: --tui needs a terminal")
    assert not (root / ".stockade").exists() and not (tmp_path / "data").exists()  # nothing ran


def test_tui_without_a_terminal_says_what_to_use(recorded: Recorded) -> None:
    done = subprocess.run([*STOCKADE, "tui", "--database-url", recorded.url], cwd=recorded.root,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        f"stockade: error: stockade tui needs a terminal: `stockade runs {recorded.run_id}` "
        "shows it as text\n"
    )


def test_textual_is_imported_only_when_the_tui_runs() -> None:
    code = textwrap.dedent("""
        import sys
        from stockade.cli.main import main
        for argv in (["--help"], ["tui", "--help"], ["run", "--help"], ["runs", "--help"]):
            assert main(argv) == 0
        assert "textual" not in sys.modules, "textual imported"
        import stockade.cli.tui_cmd, stockade.cli.run_cmd, stockade.cli.runs_cmd
        assert "textual" not in sys.modules, "textual imported"
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
