"""The ``mock`` backend: records calls and plays back scripted results.

For tests of the layers above the sandbox (runner, engine, CLI) that need a
sandbox but not isolation: nothing is executed. Each launch returns a
handle whose stdout and stderr pipes already hold the scripted bytes and
whose exit status is the scripted one. It is never used to test a real
backend.

    sandbox = MockSandbox(script=[MockRun(stdout=b"hi\\n"), MockRun(code=3)])
    ...
    assert [c[0] for c in sandbox.calls] == ["setup", "launch", "launch", "cleanup"]
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from stockade.errors import LaunchError
from stockade.sandbox.base import Availability, ExitStatus, LaunchRequest, ProcessHandle, Sandbox

if TYPE_CHECKING:
    from stockade.spec.sandbox import SandboxProfile

__all__ = ["MockHandle", "MockRun", "MockSandbox"]

_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031
_pids = itertools.count(4_000_000)


@dataclass(frozen=True)
class MockRun:
    """What one scripted launch produces."""

    stdout: bytes = b""
    stderr: bytes = b""
    code: int | None = 0
    signal: int | None = None
    oom: bool = False


def _pipe_with(data: bytes) -> int:
    """A pipe whose read end (returned) yields ``data`` then EOF."""
    read, write = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(write, _F_SETPIPE_SZ, _PIPE_SIZE)
    try:
        if len(data) > _PIPE_SIZE:
            raise LaunchError(f"mock output is limited to {_PIPE_SIZE} bytes per stream")
        os.write(write, data)
    finally:
        os.close(write)
    os.set_blocking(read, False)
    return read


class MockHandle(ProcessHandle):
    """A finished "job": pipes with the scripted output, the scripted status."""

    kill_method = "mock"

    def __init__(self, run: MockRun, stdin_pipe: bool) -> None:
        self.run = run
        self.pid = next(_pids)
        self.stdout = _pipe_with(run.stdout)
        self.stderr = _pipe_with(run.stderr)
        self._stdin_read: int | None = None
        self.stdin = None
        if stdin_pipe:
            self._stdin_read, self.stdin = os.pipe()
            with contextlib.suppress(OSError):
                fcntl.fcntl(self.stdin, _F_SETPIPE_SZ, _PIPE_SIZE)
        self.signals: list[int] = []
        #: What the runner wrote to stdin (read at close).
        self.received_stdin = b""

    async def wait(self) -> ExitStatus:
        return ExitStatus(code=self.run.code, signal=self.run.signal, oom=self.run.oom)

    def signal(self, signum: int) -> None:
        self.signals.append(signum)

    async def kill_all(self) -> int:
        return 0

    def alive(self) -> bool:
        return False

    def close_stdin(self) -> None:
        if self.stdin is not None:
            os.close(self.stdin)
            self.stdin = None

    def close(self) -> None:
        self.close_stdin()
        if self._stdin_read is not None:
            os.set_blocking(self._stdin_read, False)
            with contextlib.suppress(BlockingIOError):
                while chunk := os.read(self._stdin_read, 65536):
                    self.received_stdin += chunk
            os.close(self._stdin_read)
            self._stdin_read = None
        for fd in (self.stdout, self.stderr):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.stdout = self.stderr = -1


class MockSandbox(Sandbox):
    """Records ``setup``/``launch``/``cleanup`` in :attr:`calls`; see the module docstring."""

    name: ClassVar[str] = "mock"

    def __init__(
        self,
        profile: SandboxProfile | None = None,
        slot: str | None = None,
        script: Sequence[MockRun] | Callable[[LaunchRequest], MockRun] | None = None,
    ) -> None:
        self.profile = profile
        self.slot = slot or "mock"
        self._script = script
        self._launches = 0
        #: ``(method, argument)`` for every call, in order.
        self.calls: list[tuple[str, Any]] = []
        self.handles: list[MockHandle] = []

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True)

    def setup(self) -> None:
        self.calls.append(("setup", None))

    def launch(self, request: LaunchRequest) -> MockHandle:
        self.calls.append(("launch", request))
        if callable(self._script):
            run = self._script(request)
        elif self._script is not None and self._launches < len(self._script):
            run = self._script[self._launches]
        else:
            run = MockRun()
        self._launches += 1
        handle = MockHandle(run, request.stdin_pipe)
        self.handles.append(handle)
        return handle

    def cleanup(self) -> None:
        self.calls.append(("cleanup", None))
