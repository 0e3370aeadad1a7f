"""Optionally, every attempt's whole output in files on the worker's disk.

The store keeps a head and a tail of each attempt's log (see
:mod:`~stockade.engine.logbudget`). A worker started with ``--full-logs DIR``
also writes all of it, masked, byte for byte, to ``DIR/JOB_ID.N.stdout`` and
``DIR/JOB_ID.N.stderr`` (mode 0600). Nothing bounds these files but the
disk: the operator who asks for them owns their cleanup. They are written
by a :class:`~stockade.runner.sinks.TerminalSink` thread, so a slow disk
never stalls the job (past 64 MiB behind, output is dropped and counted in
the stream's ``dropped_events``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket

from stockade.runner.sinks import TerminalSink

__all__ = ["FullLog"]

log = logging.getLogger("stockade.worker")

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


class FullLog:
    """The two files of one attempt and the sink that fills them."""

    def __init__(self, directory: str, job_id: str, attempt: int) -> None:
        self.prefix = os.path.join(directory, f"{job_id}.{attempt}")
        self._fds: list[int] = []
        try:
            for stream in ("stdout", "stderr"):
                self._fds.append(os.open(f"{self.prefix}.{stream}", _FLAGS, 0o600))
        except OSError:
            self.close()
            raise
        self.sink = TerminalSink(self._fds[0], self._fds[1], show_notes=False)

    @classmethod
    def open(cls, directory: str, job_id: str, attempt: int) -> FullLog | None:
        """The attempt's files, or ``None`` (with a warning) if they cannot be made:
        the job runs all the same, with the store's head and tail only."""
        try:
            return cls(directory, job_id, attempt)
        except OSError as exc:
            log.warning("job %s: no full log in %s: %s", job_id, directory, exc.strerror or exc)
            return None

    @property
    def where(self) -> str:
        """Where the files are, for the store's marker: ``HOST:PREFIX.{stdout,stderr}``."""
        return f"{socket.gethostname()}:{self.prefix}.{{stdout,stderr}}"

    def close(self) -> None:
        """Close the files (after the sink was closed: the run does that)."""
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
