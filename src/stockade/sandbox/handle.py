"""SandboxHandle: a launched job plus what its backend adds around it.

Every backend that starts a host process gets a
:class:`~stockade.sandbox.process.PopenHandle` from ``spawn``; this wrapper
adds, without changing how the runner drives it:

- OOM attribution: the memory cgroup's ``oom_kill`` counter is compared with
  its value before the launch, and a rise sets ``ExitStatus.oom``;
- the slot cgroups' peak memory and process count, added to the rusage
  figures of :meth:`usage` (left out where the reaped process is a runtime
  whose rusage is not the job's: ``rusage_is_the_jobs=False``);
- runtime exit codes: bwrap and runc report a job killed by signal N as
  exit code 128+N; with ``signal_codes`` that becomes the signal again;
- teardown after the job: unmounting per-launch binds (chroot), deleting
  the container (oci). ``async_teardown`` runs after the first ``kill_all``
  (the runner always calls it once the main process is gone);
  ``teardown`` runs on ``close`` (always called, also after errors).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from stockade.errors import LaunchError
from stockade.sandbox.base import ExitStatus, ProcessHandle
from stockade.sandbox.process import PopenHandle
from stockade.sandbox.usage import Usage

__all__ = ["SandboxHandle"]

_MAX_SIGNAL = 64


class SandboxHandle(ProcessHandle):
    """Delegates to a :class:`PopenHandle`; see the module docstring."""

    def __init__(
        self,
        inner: PopenHandle,
        *,
        oom_kills: Callable[[], int] | None = None,
        oom_before: int = 0,
        signal_codes: bool = False,
        signaller: Callable[[int], None] | None = None,
        async_teardown: Callable[[], Awaitable[None]] | None = None,
        teardown: Callable[[], None] | None = None,
        peaks: Callable[[], dict[str, int | None]] | None = None,
        rusage_is_the_jobs: bool = True,
    ) -> None:
        self.inner = inner
        self.pid = inner.pid
        self.stdout = inner.stdout
        self.stderr = inner.stderr
        self.stdin = inner.stdin
        self._oom_kills = oom_kills
        self._oom_before = oom_before
        self._signal_codes = signal_codes
        self._signaller = signaller
        self._async_teardown = async_teardown
        self._teardown = teardown
        self._peaks = peaks
        self._rusage = rusage_is_the_jobs
        self._status: ExitStatus | None = None

    @property
    def kill_method(self) -> str:
        """The kill-all mechanism of the inner handle."""
        return self.inner.kill_method

    def launch_error(self) -> LaunchError | None:
        return self.inner.launch_error()

    def add_exit_callback(self, callback: Callable[[], None]) -> bool:
        return self.inner.add_exit_callback(callback)

    def release_slot(self) -> bool:
        # A teardown still works in the slot; an OOM is told from the slot's
        # memory cgroup counter, which the next job could raise.
        if self._async_teardown is not None or self._teardown is not None:
            return False
        if self._oom_kills is not None or self._peaks is not None:
            return False  # the peaks are read after the job, before the next one
        return self.inner.release_slot()

    def usage(self) -> Usage | None:
        usage = self.inner.usage()
        if usage is not None and not self._rusage:
            usage = Usage()  # the reaped process's rusage is not the job's: no figure
        if self._peaks is None or usage is None:
            return usage  # nothing measured (STOCKADE_USAGE=0), or no limit cgroups
        return usage.with_figures(**self._peaks())

    async def wait(self) -> ExitStatus:
        if self._status is None:
            status = await self.inner.wait()
            code = status.code
            if self._signal_codes and code is not None and 128 < code <= 128 + _MAX_SIGNAL:
                status = ExitStatus(code=None, signal=code - 128)
            if self._oom_kills is not None and self._oom_kills() > self._oom_before:
                status = dataclasses.replace(status, oom=True)
            self._status = status
        return self._status

    def signal(self, signum: int) -> None:
        self.inner.signal(signum)
        if self._signaller is not None:
            self._signaller(signum)

    async def kill_all(self) -> int:
        count = await self.inner.kill_all()
        if self._async_teardown is not None:
            teardown, self._async_teardown = self._async_teardown, None
            await teardown()
        return count

    def alive(self) -> bool:
        return self.inner.alive()

    def close_stdin(self) -> None:
        self.inner.close_stdin()

    def close(self) -> None:
        self.inner.close()
        if self._teardown is not None:
            teardown, self._teardown = self._teardown, None
            teardown()
