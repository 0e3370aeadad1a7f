"""``stockade submit --wait``: follow queued jobs to their end as ``stockade
exec`` shows one: their output as it reaches the store, a warning when no
live worker can run them, and ``exec``'s exit status for the same end."""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from stockade.printable import printable

if TYPE_CHECKING:
    from stockade.store import JobRecord, Store

__all__ = ["wait_jobs"]

#: A shell's status for a command stopped by Ctrl-C, as ``stockade exec`` returns.
INTERRUPTED = 128 + signal.SIGINT


class _Interrupt:
    """Catches the first SIGINT as a flag (a store call in progress is not
    broken off); a second one raises :class:`KeyboardInterrupt` as usual."""

    def __init__(self) -> None:
        self.caught = False
        self._before: Any = None

    def __enter__(self) -> _Interrupt:
        self._before = signal.signal(signal.SIGINT, self._catch)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._before)

    def _catch(self, signum: int, frame: FrameType | None) -> None:
        self.caught = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __call__(self) -> bool:
        return self.caught


class _Warner:
    """Says once on stderr why a queued job is not claimed: its record's
    ``waiting``, or that no worker is live at all (a record cannot say that
    for a job that asks for nothing special)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.said: set[str] = set()

    def __call__(self, job: JobRecord) -> None:
        from stockade.store import JobState
        from stockade.store.records import LIVE_WITHIN

        if job.state is not JobState.QUEUED or job.id in self.said:
            return
        why = job.waiting
        if why is None and not self.store.queries.workers(alive_within=LIVE_WITHIN):
            why = "no live worker (start one with `stockade worker`)"
        if why is not None:
            self.said.add(job.id)
            click.echo(f"stockade: job {job.id} waits: {printable(why)}", err=True)


def _write(chunk: Any) -> None:
    """One log chunk to our stdout or stderr, as ``stockade logs -f`` writes it."""
    stream = sys.stdout if chunk.stream == "stdout" else sys.stderr
    stream.write(chunk.text)
    stream.flush()


def wait_jobs(store: Store, ids: Sequence[str], *, cancel_on_interrupt: bool) -> int:
    """Follow ``ids`` one after the other to their end; the exit status
    ``stockade exec`` gives the worst of them, or 130 after Ctrl-C (which
    leaves the unfinished jobs be, or cancels them with ``cancel_on_interrupt``)."""
    from stockade.engine.client import exit_status, follow_logs
    from stockade.store import TERMINAL

    warn = _Warner(store)
    records: list[JobRecord] = []
    with _Interrupt() as interrupt:
        for job_id in ids:
            record = follow_logs(store, job_id, _write, follow=True, seen=warn, stop=interrupt)
            records.append(record)
            if interrupt():
                break
    if interrupt():
        ended = {r.id for r in records if r.state in TERMINAL}
        _interrupted(store, [i for i in ids if i not in ended], records[-1], cancel_on_interrupt)
        return INTERRUPTED
    for record in records:
        if record.outcome != "succeeded":
            click.echo(f"stockade: {_failure(record)}", err=True)
    return max(exit_status(record) for record in records)


def _failure(record: JobRecord) -> str:
    """The line ``stockade exec`` says of the same end (one wording for both)."""
    from stockade.runner.result import describe_end

    return describe_end(
        record.id, record.outcome or record.state.value, reason=record.reason,
        signal=record.signal, exit_code=record.exit_code, error=record.error,
        attempts=record.attempts,
    )  # fmt: skip


def _interrupted(store: Store, left: list[str], last: JobRecord, cancel: bool) -> None:
    """One line: the jobs left stay and how to cancel them, or that they are cancelled."""
    if not left:
        return
    if cancel:
        done = store.jobs.cancel(left)
        said = ", ".join(f"{job_id} {what}" for job_id, what in done.items())
        click.echo(f"stockade: interrupted: {said}", err=True)
        return
    if left == [last.id]:
        which = f"job {last.id} stays {last.state.value}"
    else:
        which = f"job{'s' * (len(left) > 1)} {', '.join(left)} stay queued or running"
    click.echo(
        f"stockade: interrupted: {which}; cancel with `stockade cancel {' '.join(left)}`"
        " (or submit with --cancel-on-interrupt)",
        err=True,
    )
