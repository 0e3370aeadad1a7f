"""What a worker has done, counted: the figures health checks and metrics expose."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["Counters"]


@dataclass
class Counters:
    """Monotonic counts since the worker started.

    ``claimed`` jobs end up in exactly one of: ``succeeded``, ``failed``,
    ``retried`` (queued again by policy), ``cancelled``, ``released`` (given
    back without spending an attempt: shutdown or an infrastructure error),
    ``superseded`` (its lease was taken over; another attempt owns the job),
    ``fenced`` (killed by the worker's fence: its lease was not renewed in
    time; recovery records the attempt lost).
    ``timed_out`` counts attempts that hit their time limit (they are also
    in ``retried`` or ``failed``); ``lost`` counts attempts of *other*
    workers this one recovered; ``store_errors`` counts failed store calls.
    """

    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    timed_out: int = 0
    cancelled: int = 0
    released: int = 0
    superseded: int = 0
    fenced: int = 0
    lost: int = 0
    store_errors: int = 0

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name``."""
        setattr(self, name, getattr(self, name) + n)

    def summary(self) -> str:
        """The counters as a line for people: ``3 claimed: 2 succeeded, 1 failed``
        (only the counts that are not zero; ``no jobs`` when none is)."""
        counts = self.as_dict()
        claimed = counts.pop("claimed")
        rest = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items() if n)
        if not claimed:
            return rest or "no jobs"
        return f"{claimed} claimed" + (f": {rest}" if rest else "")

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain mapping (what the store keeps per worker)."""
        return asdict(self)
