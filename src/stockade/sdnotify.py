"""systemd's service notification protocol (``sd_notify(3)``), in its few lines.

Under a ``Type=notify`` unit, systemd passes ``$NOTIFY_SOCKET``: a Unix
datagram socket (a path, or an abstract name written ``@name``) to which the
service sends newline-separated ``KEY=VALUE`` states: ``READY=1`` once it
serves, ``STOPPING=1`` when it starts to drain, ``WATCHDOG=1`` at least every
``$WATCHDOG_USEC`` microseconds when the unit sets ``WatchdogSec=``.
Without ``$NOTIFY_SOCKET`` (not run by systemd) every call does nothing.

The protocol is one ``sendto`` per state; a library for it would add a
dependency for less code than this module.
"""

from __future__ import annotations

import asyncio
import os
import socket

__all__ = ["keep_alive", "notify", "watchdog_interval"]


def _address() -> str | None:
    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path or path[0] not in "/@":  # unset, or not a socket address systemd gives
        return None
    return "\0" + path[1:] if path[0] == "@" else path


def notify(*states: str) -> bool:
    """Send ``states`` (``"READY=1"``, ``"STATUS=…"``) to systemd; whether it
    was sent. A missing or unreachable socket is not an error: the service
    runs the same without a supervisor listening."""
    address = _address()
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(states).encode(), address)
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half the unit's ``WatchdogSec=``),
    or ``None`` when no watchdog is asked of this process."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


async def keep_alive(interval: float) -> None:
    """Ping the watchdog every ``interval`` seconds until cancelled. It runs
    on the service's event loop, so a loop that stops turning stops the pings
    and systemd restarts the service."""
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
