"""A pipeline run and its test results as the store reads them back.

Apart from the rows a run's recorder writes (:mod:`~stockade.store.runrows`)
so that ``stockade run`` does not build these classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from stockade.store.states import RunState

__all__ = ["RunRecord", "TestRecord"]


@dataclass
class RunRecord:
    """A run as stored."""

    id: str
    pipeline: str
    state: RunState
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    options: dict[str, Any]
    steps: dict[str, Any]
    tests: dict[str, int]
    reason: str | None
    cancel_requested: bool
    source_run: str | None
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> RunRecord:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["state"] = RunState(values["state"])
        values["cancel_requested"] = bool(values["cancel_requested"])
        values["warnings"] = [str(w) for w in values["warnings"] or []]
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data


@dataclass
class TestRecord:
    """One test result of a run (``output`` kept for failed tests)."""

    __test__ = False  # not a pytest class

    job_id: str | None
    package: str
    test: str
    status: str
    elapsed: float
    output: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
