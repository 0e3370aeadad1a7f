"""systemd's service notification protocol (``sd_notify(3)``), in its few lines.

Under a ``Type=notify`` unit, systemd passes ``$NOTIFY_SOCKET``: a Unix
datagram socket (a path, or an abstract name written ``@name``) to which the
service sends newline-separated ``KEY=VALUE`` states: ``READY=1`` once it
serves, ``STOPPING=1`` when it starts to drain, ``WATCHDOG=1`` at least every
``$WATCHDOG_USEC`` microseconds when the unit sets ``WatchdogSec=``.
Without ``$NOTIFY_SOCKET`` (not run by systemd) nothing is sent.

The protocol is one ``sendto`` per state; a library for it would add a
dependency for less code than this module.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass

__all__ = ["Notifier"]

_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


@dataclass(frozen=True)
class Notifier:
    """Where this process tells systemd its state, and how often it must
    ping the watchdog (``None``: no watchdog asked of it)."""

    address: str | None = None
    watchdog: float | None = None

    @classmethod
    def from_environment(cls) -> Notifier:
        """Read systemd's variables and remove them from the environment (as
        ``sd_notify(3)``'s ``unset_environment`` does): jobs inherit
        stockade's environment, and must not speak for it."""
        values = {name: os.environ.pop(name, "") for name in _VARIABLES}
        return cls(_address(values["NOTIFY_SOCKET"]), _interval(values))

    def notify(self, *states: str, wait: float = 1.0) -> bool:
        """Send ``states`` (``"READY=1"``, ``"STATUS=…"``); whether it was sent.
        A missing or unreachable socket is not an error: the service runs
        the same without a supervisor listening. A supervisor whose queue is
        full is waited for up to ``wait`` seconds, then the states are
        dropped: the event loop is never stalled for longer."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(wait)
                sock.sendto("\n".join(states).encode(), self.address)
        except OSError:  # TimeoutError included
            return False
        return True

    async def keep_alive(self) -> None:
        """Ping the watchdog until cancelled (return at once if none is asked
        for). Run it on the service's event loop: a loop that stops turning
        stops the pings, and systemd restarts the service."""
        if self.watchdog is None or self.address is None:
            return
        while True:
            self.notify("WATCHDOG=1", wait=0)  # a ping dropped is one of many
            await asyncio.sleep(self.watchdog)


def _address(path: str) -> str | None:
    """The socket address of ``$NOTIFY_SOCKET``; ``None`` if unset or not one."""
    if not path or path[0] not in "/@":
        return None
    return "\0" + path[1:] if path[0] == "@" else path


def _interval(values: dict[str, str]) -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds, when the watchdog is this process's."""
    usec, pid = values["WATCHDOG_USEC"], values["WATCHDOG_PID"]
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6
