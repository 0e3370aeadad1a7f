"""Spans of a pipeline run and its steps (see :mod:`stockade.tracing`).

An observer like the others: the run's span opens at ``run_start`` and
closes at ``run_finish``; each step's span is its child, from
``step_start`` to ``step_finish``, with the step's status. Nothing is done
unless spans are recorded (:func:`stockade.tracing.active`).
"""

from __future__ import annotations

from typing import Any

from stockade import tracing
from stockade.pipeline.model import Job, RunState

__all__ = ["TraceObserver"]


class TraceObserver:
    """Opens and ends the spans of one pipeline run as its events arrive."""

    def __init__(self) -> None:
        self._trace: Any = None
        if tracing.active():
            from opentelemetry import trace

            self._trace = trace
        self._run: Any = None
        self._steps: dict[str, Any] = {}

    def event(self, kind: str, run: RunState, job: Job | None, data: dict[str, Any]) -> None:
        """Start or end the run's or a step's span."""
        if self._trace is None:
            return
        tracer = tracing.tracer()
        if kind == "run_start":
            names = {"stockade.pipeline": run.pipeline, "stockade.run": run.run_id}
            self._run = tracer.start_span("stockade.pipeline", attributes=names)
        elif kind == "step_start" and self._run is not None:
            parent = self._trace.set_span_in_context(self._run)
            self._steps[data["step"]] = tracer.start_span(
                "stockade.step", context=parent,
                attributes={"stockade.step": data["step"], "stockade.run": run.run_id},
            )  # fmt: skip
        elif kind == "step_finish":
            step = self._steps.pop(data["step"], None)
            if step is None and self._run is not None:  # skipped before it started
                parent = self._trace.set_span_in_context(self._run)
                step = tracer.start_span("stockade.step", context=parent,
                                         attributes={"stockade.step": data["step"]})  # fmt: skip
            if step is not None:
                step.set_attribute("stockade.status", str(data.get("status", "")))
                step.end()
        elif kind == "run_finish" and self._run is not None:
            for step in self._steps.values():
                step.end()
            self._steps.clear()
            self._run.set_attribute("stockade.status", run.status.value)
            self._run.end()
            self._run = None
