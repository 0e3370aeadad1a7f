"""How a job's notifications are shown (``stockade show``, the API): pure, no SQLAlchemy,
so the CLI's fast SQLite reader (:mod:`~stockade.store.lite`) can use it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

__all__ = ["SHOWN", "delivery_id", "shown"]


def delivery_id(job_id: str, target: int) -> str:
    """The delivery's stable id (``X-Stockade-Delivery``), the same on every try."""
    return f"{job_id}.{target}"


def _shown_url(url: str) -> str:
    """``url`` without what may hold a credential (user info, query, fragment)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


#: The ``notifications`` columns a job's view reads, in order.
SHOWN = ("id", "attempt", "target", "kind", "state", "tries", "due", "history", "spec",
         "created_at", "updated_at")  # fmt: skip


def shown(job_id: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of :data:`SHOWN` as a job's view shows them: where each goes (a
    URL without its credentials, or an argv), never a secret's source."""
    for row in rows:
        spec = row.pop("spec") or {}
        row["to"] = _shown_url(spec["url"]) if spec.get("url") else spec.get("command")
        row["delivery"] = delivery_id(job_id, row["target"])
        row["history"] = row["history"] or []
    return rows
