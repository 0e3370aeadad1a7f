"""The spool shim: a job's parent that outlives its worker (``stockade worker --reattach``).

In reattach mode the process a slot launches is this small program, with the
job's command (the sandbox's whole argv: ``bwrap … -- cmd`` for a bwrap
slot) after the spool prefix::

    _spoolshim PREFIX CMD ARG...
    python -S -I spoolshim.py PREFIX CMD ARG...

Two implementations of the same protocol: ``_spoolshim``, a small C program
built at install next to this file when a C compiler is there (an exec:
about 1.5 ms of CPU more per job), and this file run as a bare interpreter
(``-S -I``, importing only built-in modules and ``resource``, which
``os.wait4`` needs: 10-30 ms more per job).
:func:`launcher` picks one; ``STOCKADE_NATIVE_SHIM=0`` in the worker's
environment forces this one.

It is born where the job would have been (the slot cgroup, a session of its
own) and:

* writes ``PREFIX.pid`` (its pid, its start time, the job's pid and its own
  cgroup, renamed into place) so a restarted worker can tell it is alive
  and where the job runs;
* starts the command with the signals it ignores itself set back to their
  defaults, its stdout and stderr on pipes of the shim's;
* appends everything the job writes to ``PREFIX.out`` / ``PREFIX.err``
  first, then forwards it to its own stdout/stderr (the worker's pipes, so
  a worker that lives sees the output as before); once the worker is gone
  (``EPIPE``) it only spools;
* when the command ends, takes what is left in the pipes, writes
  ``PREFIX.status`` (renamed into place: a reader sees all of it or
  nothing) and ends the same way the command did. The line is ``CODE
  SIGNAL UTIME STIME MAXRSS_KB INBLOCK OUBLOCK``: how the job ended and its
  rusage as ``wait4`` gives it (CPU seconds; peak resident set in KiB, 0
  when not above the peak of the shim's own memory, which the job's
  ``exec`` carried over; 512-byte blocks read and written), so that a
  restarted worker records the usage of a job it did not reap. A command that cannot be started
  gets ``127 0`` alone (a reader takes the first two fields).

It ignores every signal a stop or a dump may send to the whole job (a task
names any: SIGTERM, SIGINT, SIGQUIT, SIGUSR1…) but KILL, STOP, CONT, CHLD
and the faults: the stop ladder signals every process of the job, and the
shim must live to record how the job took it. SIGKILL (a cgroup kill, the
fence) ends it with the job: no status file then, and a restarted worker
treats the attempt as lost.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C module: ``signal`` would import enum (start-up time)
import os
import resource  # os.wait4 imports it anyway (its struct_rusage)
import select
import sys

#: HUP INT QUIT ABRT USR1 USR2 PIPE ALRM TERM STKFLT TSTP TTIN TTOU URG XCPU
#: XFSZ VTALRM PROF WINCH IO PWR (Linux numbers: ``signal`` would import
#: enum); kept equal to ``IGNORED`` in _spoolshim.c.
_IGNORED = (1, 2, 3, 6, 10, 12, 13, 14, 15, 16, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30)
IGNORED_SIGNALS = _IGNORED
_READ = 1 << 16
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
_HERE = os.path.dirname(os.path.abspath(__file__))
#: The C shim's executable (absent where the install had no C compiler).
NATIVE = os.path.join(_HERE, "_spoolshim")


def launcher(prefix: str, native: bool | None = None) -> list[str]:
    """The argv prefix that starts a shim spooling to ``prefix``; the job's
    command follows it. ``native``: the C shim (True), this file (False), or
    the C shim if it was built and ``STOCKADE_NATIVE_SHIM`` is not ``0``."""
    if native is None:
        native = os.environ.get("STOCKADE_NATIVE_SHIM", "1") != "0" and os.access(NATIVE, os.X_OK)
    if native:
        return [NATIVE, prefix]
    return [sys.executable, "-S", "-I", os.path.join(_HERE, "spoolshim.py"), prefix]


def _put(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file renamed into place)."""
    temporary = path + ".tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.rename(temporary, path)


def _cgroup() -> str:
    try:
        with open("/proc/self/cgroup", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return ""


def _start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return "0"


def main(argv: list[str]) -> None:
    prefix, command = argv[1], argv[2:]
    for signum in _IGNORED:
        _signal.signal(signum, _signal.SIG_IGN)
    spools = {
        1: os.open(prefix + ".out", _FLAGS, 0o600),
        2: os.open(prefix + ".err", _FLAGS, 0o600),
    }
    forwarding = {1: True, 2: True}
    ends = {}
    actions = []
    for target in (1, 2):
        read, write = os.pipe2(os.O_CLOEXEC)
        ends[read] = target
        actions.append((os.POSIX_SPAWN_DUP2, write, target))
    try:
        pid = os.posix_spawnp(
            command[0], command, os.environ, file_actions=actions, setsigdef=_IGNORED
        )
    except OSError as exc:
        message = f"cannot run {command[0]!r}: {exc.strerror or exc}\n".encode()
        os.write(spools[2], message)
        _forward(2, message, forwarding)
        _put(prefix + ".status", "127 0\n")
        os._exit(127)
    for action in actions:
        os.close(action[1])
    me = os.getpid()
    _put(prefix + ".pid", f"{me} {_start_time(me)} {pid} {_cgroup()}\n")
    _relay(pid, ends, spools, forwarding)
    _, status, used = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    signum = -code if code < 0 else 0
    _put(prefix + ".status", f"{max(code, 0)} {signum} {_usage(used)}\n")
    if signum:
        if signum in _IGNORED:
            _signal.signal(signum, _signal.SIG_DFL)
        os.kill(me, signum)
    os._exit(max(code, 0))


def _usage(used: resource.struct_rusage) -> str:
    """``UTIME STIME MAXRSS_KB INBLOCK OUBLOCK`` of a reaped job, as the C shim writes them."""
    maxrss = used.ru_maxrss if used.ru_maxrss > _own_peak() else 0
    return f"{used.ru_utime:.6f} {used.ru_stime:.6f} {maxrss} {used.ru_inblock} {used.ru_oublock}"


def _own_peak() -> float:
    """The peak resident set of the shim's own memory in KiB (``VmHWM``: its
    ``ru_maxrss`` holds its spawner's peak, carried over at its exec); the
    job's exec carried it into the job's figure."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return float("inf")


def _relay(
    pid: int, ends: dict[int, int], spools: dict[int, int], forwarding: dict[int, bool]
) -> None:
    """Move the job's output until both pipes are closed or the job has ended
    (then what it wrote before it ended: a daemon it left may hold the pipes)."""
    exited = os.pidfd_open(pid)
    poller = select.poll()
    for read in ends:
        poller.register(read, select.POLLIN)
    poller.register(exited, select.POLLIN)
    open_ends = set(ends)
    while open_ends:
        ready = [fd for fd, _ in poller.poll()]
        for read in ready:
            if read != exited and not _pump(read, ends[read], spools, forwarding):
                poller.unregister(read)
                open_ends.discard(read)
        if exited in ready:
            for read in open_ends:
                os.set_blocking(read, False)
                try:
                    while _pump(read, ends[read], spools, forwarding):
                        pass
                except BlockingIOError:
                    pass
            return


def _pump(read: int, target: int, spools: dict[int, int], forwarding: dict[int, bool]) -> bool:
    """Move one read of ``read`` to its spool, then to the worker; False at EOF."""
    data = os.read(read, _READ)
    if not data:
        return False
    os.write(spools[target], data)
    _forward(target, data, forwarding)
    return True


def _forward(target: int, data: bytes, forwarding: dict[int, bool]) -> None:
    if not forwarding[target]:
        return
    try:
        while data:
            data = data[os.write(target, data) :]
    except OSError:
        forwarding[target] = False  # the worker is gone: spool only


if __name__ == "__main__":
    main(sys.argv)
