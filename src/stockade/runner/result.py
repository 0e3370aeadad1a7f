"""The result record of one attempt, and the pure classification policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from stockade.reasons import Reason

__all__ = [
    "Annotation",
    "Outcome",
    "Result",
    "StreamStats",
    "classify",
    "describe",
    "ended_because",
    "exit_status_for",
]


class Outcome(StrEnum):
    """How an attempt ended (docs/design.md, step 8)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYABLE = "retryable"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    LOST = "lost"


@dataclass
class StreamStats:
    """What one stream produced: bytes read, bytes kept, whether it was cut."""

    bytes_seen: int = 0
    bytes_kept: int = 0
    truncated: bool = False
    dropped_events: int = 0


@dataclass
class Annotation:
    """An ``::error``/``::warning``/``::notice`` the job reported."""

    level: str
    message: str
    file: str | None = None
    line: int | None = None
    col: int | None = None
    title: str | None = None


@dataclass
class Result:
    """Everything known about one finished attempt; serializable with :meth:`to_dict`."""

    job_id: str
    task: str
    attempt: int
    outcome: Outcome
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    error: str | None = None
    started_at: str = ""
    finished_at: str = ""
    duration: float = 0.0
    outputs: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    streams: dict[str, StreamStats] = field(default_factory=dict)
    annotations: list[Annotation] = field(default_factory=list)
    log_path: str | None = None
    kill_method: str | None = None
    killed: int = 0
    #: What the attempt used (:class:`stockade.sandbox.usage.Usage` as a dict);
    #: ``None`` for an attempt that never started.
    usage: dict[str, Any] | None = None
    #: The dump signal sent before a timeout's stop: ``signal``, ``on`` (the
    #: reason), ``offsets`` (bytes of each stream before it: the dump follows)
    #: and ``log`` (the log file, or ``None``: the store keeps the log).
    dump: dict[str, Any] | None = None
    #: Files kept from the workspace (:mod:`stockade.runner.artifacts`):
    #: ``name``, ``size`` and ``sha256`` each.
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    #: Matches that were not kept (not a regular file, leading out): ``name``, ``reason``.
    artifact_skipped: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-able data.

        Built by hand rather than with ``dataclasses.asdict``, whose deep copy
        was a tenth of the cost of a ``/bin/true`` attempt.
        """
        data = {name: getattr(self, name) for name in _RESULT_FIELDS}
        data["outcome"] = self.outcome.value
        data["outputs"] = dict(self.outputs)
        data["state"] = dict(self.state)
        data["streams"] = {name: vars(stats).copy() for name, stats in self.streams.items()}
        data["annotations"] = [vars(note).copy() for note in self.annotations]
        if self.usage is not None:
            data["usage"] = dict(self.usage)
        if self.dump is not None:
            data["dump"] = dict(self.dump)
        data["artifacts"] = [dict(item) for item in self.artifacts]
        data["artifact_skipped"] = [dict(item) for item in self.artifact_skipped]
        return data

    @property
    def exit_status(self) -> int:
        """The exit status ``stockade exec`` returns for this result."""
        return exit_status_for(self)


_RESULT_FIELDS = tuple(f.name for f in fields(Result))


def exit_status_for(result: Result) -> int:
    """The status ``stockade exec`` returns for ``result``
    (:func:`stockade.runner.policy.exit_status`)."""
    from stockade.runner.policy import exit_status

    return exit_status(
        result.outcome, exit_code=result.exit_code, signal=result.signal, reason=result.reason
    )


def classify(
    *,
    exit_code: int | None,
    signal: int | None,
    success_codes: tuple[int, ...] = (0,),
    retry_codes: tuple[int, ...] = (75,),
    failure_codes: tuple[int, ...] = (),
    timed_out: bool = False,
    cancelled: bool = False,
) -> Outcome:
    """Map how a process ended to an :class:`Outcome`.

    Order matters: a cancel or a timeout we caused wins over the exit status
    the kill produced (check the deadline before the exit status, as the
    go-synth notes learned). A signal death is matched against the code lists
    as ``128+N``, the way a shell reports it.
    """
    if cancelled:
        return Outcome.CANCELLED
    if timed_out:
        return Outcome.TIMED_OUT
    code = 128 + signal if signal is not None else exit_code
    if code is None:
        return Outcome.FAILED
    if code in failure_codes:
        return Outcome.FAILED
    if code in success_codes and signal is None:
        return Outcome.SUCCEEDED
    if code in retry_codes:
        return Outcome.RETRYABLE
    return Outcome.FAILED


def ended_because(stop: str | None, outcome: Outcome, *, oom: bool, signal: int | None) -> Reason:
    """The :class:`~stockade.reasons.Reason` of an attempt that ran: the stop
    stockade made (timeout, idle timeout, cancel) wins, then the memory limit,
    then how the process ended."""
    if stop is not None:
        return Reason(stop)
    if oom:
        return Reason.OOM
    if signal is not None:
        return Reason.SIGNAL
    if outcome is Outcome.SUCCEEDED:
        return Reason.SUCCEEDED
    return Reason.RETRYABLE if outcome is Outcome.RETRYABLE else Reason.FAILED


_REASONS: dict[str, str] = {
    Reason.TIMEOUT: "hit its timeout",
    Reason.IDLE_TIMEOUT: "printed nothing for its idle timeout",
    Reason.CANCELLED: "was cancelled",
    Reason.OOM: "ran out of memory",
    Reason.LAUNCH_ERROR: "could not start",
    Reason.OUTPUT_ERROR: "produced unreadable output",
}


def describe(result: Result, attempts: int = 1) -> str:
    """One line for humans: ``job ID failed (exit 3)``, ``job ID timed_out: hit its timeout``
    (``after N attempts`` when ``attempts`` > 1); control characters in the
    error escaped (:func:`stockade.printable.printable`)."""
    return describe_end(
        result.job_id, result.outcome.value, reason=result.reason, signal=result.signal,
        exit_code=result.exit_code, error=result.error, attempts=attempts, dump=result.dump,
    )  # fmt: skip


def describe_end(
    job_id: str,
    outcome: str,
    *,
    reason: str | None,
    signal: int | None,
    exit_code: int | None,
    error: str | None,
    attempts: int,
    dump: Mapping[str, Any] | None = None,
) -> str:
    """The line :func:`describe` says, from a job's recorded fields (``stockade
    exec`` and ``submit --wait`` say the same), with ``after N attempts``
    when there were several."""
    text = f"job {job_id} {outcome}"
    if reason in _REASONS:
        text += f": {_REASONS[reason]}"
    if signal is not None:
        text += f" (killed by signal {signal})"
    elif exit_code is not None:
        text += f" (exit {exit_code})"
    if error:
        text += f": {error}"
    if dump is not None:
        text += f"; {dump['signal']} was sent first for a stack dump (in its log)"
    if attempts > 1:
        text += f" after {attempts} attempts"
    from stockade.printable import printable  # only a failure is described: not at start-up

    return printable(text)
