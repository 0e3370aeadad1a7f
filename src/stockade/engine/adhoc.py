"""Ad-hoc jobs (``submit -- CMD``, ``submit --shell LINE``) made without pydantic.

An ad-hoc job's stored spec is a pure function of its command line and the
defaults of :class:`~stockade.spec.TaskSpec`: no stockade.yaml, no
``${VAR}``. Importing pydantic and validating the task's models was most of
what ``stockade submit -- true`` cost, so :func:`adhoc_job` fills in a
template the model itself made (:mod:`~stockade.engine.adhoctemplate`,
written by :mod:`~stockade.engine.adhocgen`; a test fails while it is stale)
and returns the :class:`~stockade.store.records.NewJob` that
:func:`~stockade.engine.jobspec.new_job` of
:func:`~stockade.engine.jobspec.adhoc_task` returns: the same rows once
stored, which a test checks for every option ``submit`` takes.

Only for a command the model takes as it is (:func:`fits`); for anything
else the model decides, with its own error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stockade import tracing
from stockade.engine import adhoctemplate
from stockade.store.records import NewJob

__all__ = ["INPUT_FORMAT", "Adhoc", "adhoc_job"]

#: The ad-hoc task's ``input_format``: what its input must be.
INPUT_FORMAT: str = adhoctemplate.INPUT_FORMAT


@dataclass(frozen=True)
class Adhoc:
    """What an ad-hoc job runs: ``argv``, or the shell line ``shell``, in ``workdir``."""

    argv: Sequence[str] | None
    shell: str | None
    workdir: str

    def fits(self) -> bool:
        """Whether the model would take this as given (one of the two, and a
        shell line that is not blank): only then may :func:`adhoc_job` make it."""
        if self.shell is not None:
            return self.argv is None and bool(self.shell.strip())
        return bool(self.argv)


def adhoc_job(
    adhoc: Adhoc,
    *,
    max_attempts: int | None = None,
    queue: str | None = None,
    labels: Mapping[str, str] | None = None,
    input: Any = None,
    priority: int | None = None,
    delay: float = 0.0,
) -> NewJob:
    """The job :func:`~stockade.engine.jobspec.new_job` makes of the ad-hoc
    task with these options (``labels`` added to the task's); ``adhoc`` must
    :meth:`~Adhoc.fits`."""
    if not adhoc.fits():
        raise ValueError("not an ad-hoc job the template can make: use the task model")
    spec = json.loads(adhoctemplate.SPEC)
    task = spec["task"]
    task["command"] = None if adhoc.argv is None else list(adhoc.argv)
    task["run"] = adhoc.shell
    task["workdir"] = adhoc.workdir
    fields = json.loads(adhoctemplate.JOB)
    if max_attempts is not None:
        task["max_attempts"] = fields["max_attempts"] = max_attempts
    if queue is not None:
        fields["queue"] = queue
    fields["labels"].update(labels or {})
    if priority is not None:
        fields["priority"] = priority
    trace = tracing.carrier()
    if trace:  # as new_job: whichever worker runs it continues the trace
        spec["trace"] = trace
    return NewJob(spec=spec, input=input, delay=delay, **fields)
