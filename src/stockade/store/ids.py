"""Job ids: time-ordered and unique without coordination."""

from __future__ import annotations

import os
import time

__all__ = ["new_job_id"]


def new_job_id() -> str:
    """A millisecond clock (11 hex digits) then 32 random bits (8 hex digits).

    The same shape as the runner's ids for ad-hoc runs, so ids sort by
    submission time and ``stockade show`` accepts any unique prefix.
    """
    return f"{int(time.time() * 1000):011x}{os.urandom(4).hex()}"
