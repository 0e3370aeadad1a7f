"""Reading what a CLI subprocess draws on a pseudo-terminal."""

from __future__ import annotations

import os
import select
import time

__all__ = ["read_pty"]


def read_pty(fd: int, until: float) -> bytes:
    """Everything the terminal's master ``fd`` gives until the other side
    closes or the monotonic clock passes ``until``."""
    out = b""
    while time.monotonic() < until:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the other side closed (EIO on Linux)
                break
            if not chunk:
                break
            out += chunk
    return out
