"""Small builders for store tests."""

from __future__ import annotations

from typing import Any

from stockade.runner.result import Outcome, Result
from stockade.store import Claim, NewJob


def new(task: str = "t", **keys: Any) -> NewJob:
    """A job with an empty frozen spec (the store never looks inside it)."""
    return NewJob(task=task, spec={"test": True}, **keys)


def result(claim: Claim, outcome: Outcome, **keys: Any) -> Result:
    """The runner's result of ``claim``'s attempt."""
    base = Result(claim.job_id, claim.task, claim.run, outcome)
    base.state = dict(claim.state)
    for key, value in keys.items():
        setattr(base, key, value)
    return base
