"""Which queued jobs a worker may claim: the job's sandbox travels with it.

A job whose task declares a sandbox keeps that profile's backend in the
store as one bit (``jobs.sandbox_need``; 0 when the task declares none).
A worker offers the backends it can run; a claim takes only jobs whose bit
is among them, tested in SQL as ``sandbox_need & refused = 0`` with one
integer parameter, so the claim's statement and index stay what they were.
A backend this stockade does not know (a newer one) is refused.
"""

from __future__ import annotations

import functools
from collections.abc import Collection

__all__ = ["SANDBOX_BITS", "backend_of", "refused_mask", "sandbox_bit"]

#: One bit per sandbox backend; stored, so never renumbered.
SANDBOX_BITS: dict[str, int] = {"local": 1, "bwrap": 2, "chroot": 4, "oci": 8, "mock": 16}
#: Every bit a job can hold (a signed 32-bit column on both stores).
_ALL = (1 << 31) - 1


def sandbox_bit(backend: str | None) -> int:
    """The stored bit of a job that needs ``backend`` (``None``: any worker)."""
    if backend is None:
        return 0
    try:
        return SANDBOX_BITS[backend]
    except KeyError:
        raise ValueError(f"unknown sandbox backend {backend!r}") from None


def backend_of(bit: int) -> str | None:
    """The backend a stored bit names, ``None`` for 0 (or a bit unknown here)."""
    return next((name for name, value in SANDBOX_BITS.items() if value == bit), None)


@functools.lru_cache(maxsize=32)
def _mask(offers: frozenset[str]) -> int:
    offered = 0
    for name in offers:
        offered |= SANDBOX_BITS.get(name, 0)
    return _ALL & ~offered


def refused_mask(offers: Collection[str] | None) -> int:
    """The bits of jobs a worker offering ``offers`` must not claim (``None``: none refused)."""
    return 0 if offers is None else _mask(frozenset(offers))
