"""The ``schedules:`` and ``retention:`` sections of ``stockade.yaml``."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from stockade.jsontext import text_problem
from stockade.schedule.ticks import CatchUp, cron_problem, zone_problem
from stockade.spec.types import Duration, Name, StrictModel

__all__ = ["RetentionSpec", "ScheduleSpec"]


class ScheduleSpec(StrictModel):
    """A task submitted at every tick of a cron expression."""

    task: Name = Field(description="The task to submit at each tick.")
    cron: str = Field(
        description='Five-field cron expression (minute hour day month weekday), e.g. "0 3 * * *".'
    )
    timezone: str = Field(default="UTC", description="IANA time zone the cron is read in [UTC].")
    input: Any = Field(default=None, description="The input of every job it submits.")
    catch_up: CatchUp = Field(
        default=CatchUp.LATEST,
        description="Ticks missed while nothing ran: latest (one job), all, or none [latest].",
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        problem = cron_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return " ".join(value.split())

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        problem = zone_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("input")
    @classmethod
    def _is_text(cls, value: Any) -> Any:
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class RetentionSpec(StrictModel):
    """How long finished jobs are kept before workers and servers delete them."""

    finished: Duration | None = Field(
        default=None, description="Keep jobs that ended (any final state) this long [forever]."
    )
    succeeded: Duration | None = Field(default=None, description="Overrides `finished`.")
    failed: Duration | None = Field(default=None, description="Overrides `finished`.")
    cancelled: Duration | None = Field(default=None, description="Overrides `finished`.")

    def ages(self) -> dict[str, float]:
        """Final state to the age past which its jobs go (states kept forever left out)."""
        ages: dict[str, float] = {}
        for state in ("succeeded", "failed", "cancelled"):
            age = getattr(self, state)
            age = self.finished if age is None else age
            if age is not None:
                ages[state] = age
        return ages
