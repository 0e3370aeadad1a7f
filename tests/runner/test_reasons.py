"""One reason enum: every way a real process ends gets a value of it, and
docs/reasons.md lists exactly its values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stockade.reasons import Reason, parse_reason
from stockade.runner.result import Outcome
from tests.runner.helpers import run_spec, sh

DOC = Path(__file__).resolve().parents[2] / "docs" / "reasons.md"


@pytest.mark.parametrize(
    ("line", "outcome", "reason"),
    [
        ("exit 0", Outcome.SUCCEEDED, Reason.SUCCEEDED),
        ("exit 3", Outcome.FAILED, Reason.FAILED),
        ("exit 75", Outcome.RETRYABLE, Reason.RETRYABLE),
        ("kill -KILL $$", Outcome.FAILED, Reason.SIGNAL),
    ],
)
def test_a_job_that_ends_by_itself_says_why(
    line: str, outcome: Outcome, reason: Reason, tmp_path: Path
) -> None:
    result, _ = run_spec(sh(line, data_dir=str(tmp_path), workdir=str(tmp_path)))
    assert (result.outcome, result.reason) == (outcome, reason)
    assert result.to_dict()["reason"] == reason.value


def test_the_doc_table_lists_every_reason_and_no_other() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \|", DOC.read_text(), re.MULTILINE)
    assert sorted(rows) == sorted(r.value for r in Reason)
    assert parse_reason("timeout") is Reason.TIMEOUT and parse_reason("exit code 1") is None
