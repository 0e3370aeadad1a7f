"""A job inside a worker: its claim, where it is in its life, how to stop it.

The worker keeps one table of them (``Worker.running``, by job id); each
entry's :class:`Phase` says where the job is::

    claimed ──► staged ──► launched ──► recording ──► done
       │          │            ▲
       └──────────┼────────────┘      (an idle slot: no staging)
                  └──► recording      (its turn never came: an error, a stop)

* **claimed**: the store gave it to this worker; it waits for a slot;
* **staged**: prepared behind a busy slot, launched the moment that slot's
  job hands it on (:class:`~stockade.runner.turn.Turn`);
* **launched**: it has its slot (an adopted job of a dead worker enters
  here: it runs already);
* **recording**: its end is being written; nothing interrupts it any more;
* **done**: recorded, given back, or left to its next owner; out of the table.

A claimed job given back (the worker stops, its sandbox cannot be set up)
goes straight to done. :meth:`Running.advance` refuses any other move: a
bug in the worker's bookkeeping fails loudly instead of recording twice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from stockade.runner.cancel import Stop
from stockade.store import Claim

__all__ = ["Phase", "PhaseError", "Running"]


class Phase(enum.Enum):
    """Where a job is in its life inside one worker."""

    CLAIMED = "claimed"
    STAGED = "staged"
    LAUNCHED = "launched"
    RECORDING = "recording"
    DONE = "done"


_NEXT: dict[Phase, frozenset[Phase]] = {
    Phase.CLAIMED: frozenset({Phase.STAGED, Phase.LAUNCHED, Phase.DONE}),
    Phase.STAGED: frozenset({Phase.LAUNCHED, Phase.RECORDING, Phase.DONE}),
    Phase.LAUNCHED: frozenset({Phase.RECORDING, Phase.DONE}),
    Phase.RECORDING: frozenset({Phase.DONE}),
    Phase.DONE: frozenset(),
}


class PhaseError(RuntimeError):
    """A move the job's life does not have (a bug in the worker)."""


@dataclass
class Running:
    """A job this worker holds, from its claim to its recorded end.

    ``interrupt`` says why the worker stopped it, if it did: ``cancel`` (a
    user asked), ``shutdown`` (the drain deadline passed) or ``superseded``
    (its lease was taken over).
    """

    claim: Claim
    #: The key of the sandbox profile the job declares (``None``: it declares
    #: none, and runs in the worker's default); see ``engine.slot.profile_key``.
    key: str | None = None
    #: Requested when the job is to stop, forced when it is to be killed now
    #: (futures: the runner watches them with callbacks, where an event would
    #: take a task per job).
    cancel: Stop = field(default_factory=Stop)
    interrupt: str | None = None
    phase: Phase = Phase.CLAIMED

    def advance(self, phase: Phase) -> None:
        """Move to ``phase`` (staying put is allowed); :class:`PhaseError` for
        a move its life does not have."""
        if phase is not self.phase and phase not in _NEXT[self.phase]:
            raise PhaseError(
                f"job {self.claim.job_id}: cannot go from {self.phase.value} to {phase.value}"
            )
        self.phase = phase

    @property
    def recording(self) -> bool:
        """Its end is being recorded (or was): nothing interrupts it any more."""
        return self.phase in (Phase.RECORDING, Phase.DONE)

    def stop(self, why: str, *, force: bool = False) -> None:
        """Ask the runner to stop the job, remembering why (first reason wins);
        with ``force``, kill it now, even if it is already being stopped."""
        if self.recording:
            return
        if self.interrupt is None:
            self.interrupt = why
        if force:
            self.cancel.force()
        else:
            self.cancel.request()
