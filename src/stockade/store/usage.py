"""An attempt's resource columns, from the usage its runner reported.

Shared by the job manager's rows (:mod:`~stockade.store.rows`) and a
pipeline run's (:mod:`~stockade.store.runrows`); a module of its own so a
run's recorder does not import the job records.
"""

from __future__ import annotations

from typing import Any

__all__ = ["usage_columns"]


def usage_columns(record: Any) -> tuple[float | None, int | None]:
    """``cpu_seconds`` and ``memory_bytes`` of an attempt from its result record's
    ``usage``: user + system CPU, and the cgroup's memory peak where measured,
    else the largest resident set (``None`` where not measured)."""
    usage = record.get("usage") if isinstance(record, dict) else None
    if not isinstance(usage, dict):
        return None, None
    user, system = usage.get("cpu_user"), usage.get("cpu_system")
    cpu = None if user is None or system is None else user + system
    memory = usage.get("memory_peak")
    return cpu, usage.get("max_rss") if memory is None else memory
