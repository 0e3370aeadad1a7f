"""The limits of a job a restarted worker took over, and its stop ladder.

An adopted job (:mod:`~stockade.engine.reattach`) has no runner supervising
it: its output and end come from its spool. Its limits are enforced here as
the runner's supervisor enforces them for a job it launched
(:mod:`stockade.runner.supervise`):

* ``timeout`` counts from the attempt's start as the store recorded it, not
  from the takeover;
* ``idle_timeout`` counts from the job's last output, as the spool's
  modification time tells it across the worker's death;
* a stop is the same ladder: the dump signal and its wait for a stop with
  one, the stop signal, ``kill_grace`` (ended early once the job has
  ended), then SIGKILL to everything left in the job's cgroup. A forced
  cancel skips to the kill, even in the middle of the grace.

Signals go to every process of the job's cgroup but the shim, which must
live to record how the job took them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

from stockade.engine.spool import Spool
from stockade.reasons import Reason
from stockade.runner.cancel import Cancel, is_forced, is_set
from stockade.runner.spec import RunSpec
from stockade.runner.supervise import signal_name
from stockade.sandbox import fence

__all__ = ["Ladder", "due"]

#: How often the ladder looks whether the job has ended or the stop was forced.
STEP = 0.05


def due(spec: RunSpec, cancel: Cancel, started: float, last_output: float) -> Reason | None:
    """Why the adopted job is to stop now, if it is: a cancel, its timeout
    (from ``started``) or its idle timeout (from ``last_output``); wall times."""
    if is_set(cancel):
        return Reason.CANCELLED
    now = time.time()
    if spec.timeout is not None and now >= started + spec.timeout:
        return Reason.TIMEOUT
    if spec.idle_timeout is not None and now >= last_output + spec.idle_timeout:
        return Reason.IDLE_TIMEOUT
    return None


class Ladder:
    """One stop of an adopted job, run beside the reading of its spool."""

    def __init__(
        self,
        spool: Spool,
        spec: RunSpec,
        cancel: Cancel,
        reason: Reason,
        offsets: Callable[[], dict[str, int]],
    ) -> None:
        self.offsets = offsets
        self.spool = spool
        self.spec = spec
        self.cancel = cancel
        self.reason = reason
        #: The dump signal sent, as the runner reports it (``offsets``: where
        #: each stream stood when it was sent).
        self.dump: dict[str, Any] | None = None
        #: How many processes the final SIGKILL found.
        self.killed = 0

    async def run(self) -> None:
        """The ladder, to the SIGKILL of what is left (also when the job ended)."""
        if not is_forced(self.cancel):
            dump = self.spec.dumps.get(self.reason)
            if dump is not None:
                self.dump = {
                    "signal": signal_name(dump[0]), "on": str(self.reason),
                    "offsets": self.offsets(),
                }  # fmt: skip
                self._signal(dump[0])
                await self._wait_gone(dump[1])
            if not is_forced(self.cancel) and not self._ended():
                self._signal(self.spec.stop_signal)
                await self._wait_gone(self.spec.kill_grace)
        self.killed = await asyncio.to_thread(self._kill)

    def _ended(self) -> bool:
        return self.spool.status() is not None or not self.spool.shim_alive()

    async def _wait_gone(self, seconds: float) -> None:
        """Up to ``seconds`` for the job to end (or the stop to be forced)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._ended() and not is_forced(self.cancel):
            await asyncio.sleep(min(STEP, max(deadline - time.monotonic(), 0)))

    def _members(self) -> list[int]:
        path = self.spool.cgroup()
        if path is None:
            return []
        try:
            with open(os.path.join(path, "cgroup.procs"), encoding="ascii") as fh:
                pids = [int(x) for x in fh.read().split()]
        except OSError:
            return []
        shim = self.spool.shim_pid()
        return [pid for pid in pids if pid != shim]

    def _signal(self, signum: int) -> None:
        for pid in self._members():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    def _kill(self) -> int:
        count = len(self._members())
        path = self.spool.cgroup()
        if path is not None:
            with contextlib.suppress(OSError):
                fence.kill_cgroup(path, remove=False)
        return count
