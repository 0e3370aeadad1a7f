"""What stockade itself prints about a job never carries a raw control character:
a heredoc key, an item or an error with ESC in it is shown escaped, while the
job's own output passes through as the job wrote it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from stockade.printable import printable
from stockade.ui.observers import PlainObserver
from tests.pipeline.helpers import run
from tests.store.fixtures import pg_base, pg_url, sqlite_url, store_url

__all__ = ["pg_base", "pg_url", "sqlite_url", "store_url"]

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]
#: A heredoc key holding "set the window title" and "clear the screen"; no
#: whitespace, so it is read as a key, and no delimiter: a failure naming it.
BAD_OUTPUT = r'printf "\033[1mjob says\033[0m\n"; printf "k\033]0;pwned\007\033[2J<<\n" >> "$STOCKADE_OUTPUT"'
SHOWN = r"k\x1b]0;pwned\x07\x1b[2J<<"


def stockade(*args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "STOCKADE_DATABASE_URL"}
    if url:
        env["STOCKADE_DATABASE_URL"] = url
    return subprocess.run(
        [*STOCKADE, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_printable_escapes_controls_and_keeps_text() -> None:
    assert printable("plain ✗ tab\there") == "plain ✗ tab\there"
    assert printable("a\x1b[31mb\x07\nc\rd\x7f\x9b\u202e\ud800") == (
        r"a\x1b[31mb\x07\x0ac\x0dd\x7f\x9b\u202e\ud800"
    )


def test_exec_failure_line_is_escaped_and_the_jobs_output_is_not(tmp_path: Path) -> None:
    proc = stockade("exec", "--data-dir", str(tmp_path), "--shell", BAD_OUTPUT)
    assert proc.returncode != 0
    assert "\x1b[1mjob says\x1b[0m" in proc.stdout  # the job's own stream, untouched
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr
    line, used = proc.stderr.splitlines()  # why it failed, then what it used
    assert SHOWN in line and line.startswith("stockade: job ")
    assert used.startswith("stockade: used cpu ")


def test_show_and_jobs_escape_what_the_store_holds(store_url: str, tmp_path: Path) -> None:
    submitted = stockade("submit", "--shell", BAD_OUTPUT, url=store_url)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    worker = stockade("worker", "--slots", "1", "--burst", "-q", url=store_url)
    assert worker.returncode == 0, worker.stderr
    shown = stockade("show", job_id, url=store_url)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert f"error     $STOCKADE_OUTPUT line 1: heredoc {SHOWN} has no delimiter" in shown.stdout
    listed = stockade("jobs", url=store_url)
    assert job_id in listed.stdout and "\x1b" not in listed.stdout


def test_a_pipeline_log_escapes_items_and_failure_tails() -> None:
    pipeline = r"""
    pipelines:
      ci:
        steps:
          build:
            for_each: ["a\e[2Jb"]
            run: 'printf "\033]0;pwned\007 broke\n" >&2; exit 1'
    """
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False, color_system=None)
    run(pipeline, keep_going=True, recorder=PlainObserver(console))  # type: ignore[arg-type]
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text
    assert r"failed    build[a\x1b[2Jb]" in text
    assert r"│ \x1b]0;pwned\x07 broke" in text
