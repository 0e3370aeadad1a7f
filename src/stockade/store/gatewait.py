"""Why a queued job held by a key or by other jobs is not claimable (pure; no I/O).

A job held back (:mod:`~stockade.store.gates`) stays ``queued`` with
``run_after`` at :data:`HELD`, out of every claim's reach, until the store
lets it go. Its row alone says why, so every face (``show``, ``jobs``, the
API) can tell without another query.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["HELD", "HELD_SQL", "gate_wait", "split_ids"]

#: ``run_after`` of a job held back: far past any clock (year 31 million),
#: so the claim's own ``run_after <= now`` keeps it out.
HELD = 1.0e15
#: :data:`HELD` as SQL text, one spelling for the claim index's predicate and
#: the claim's condition (a partial index serves a query whose WHERE has its
#: predicate's terms as they are written).
HELD_SQL = "1000000000000000.0"


def gate_wait(row: Mapping[str, Any]) -> str | None:
    """The sentence saying why the queued job of ``row`` is held; ``None`` if it is not."""
    run_after = row.get("run_after")
    if run_after is None or run_after < HELD:
        return None
    if row.get("deps_pending"):
        after = split_ids(row.get("after_ids"))
        verb = "end" if row.get("after_any") else "succeed"
        if len(after) == 1:
            return f"runs once job {after[0]} {verb}s"
        return f"runs once jobs {', '.join(after)} {verb}"
    key = row.get("concurrency_key")
    if key is not None:
        return f"concurrency key {key} is at its limit {row.get('concurrency_limit')}"
    return None


def split_ids(text: str | None) -> list[str]:
    """The job ids of a stored ``after_ids`` (comma-separated; ids hold no commas)."""
    return text.split(",") if text else []
