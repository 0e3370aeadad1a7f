"""The fence: a small process that kills its owner's jobs when the owner cannot.

A job runs in a slot cgroup (or, without one, as a process group) of the
stockade process that started it: a worker, ``stockade exec`` or
``stockade run``. If that owner is SIGKILLed, its jobs would run on with
nobody to stop them, beside the retry another worker starts; if a worker
cannot renew its leases (database cut off, the worker paused), its jobs
would run on past the lease, beside the attempt of the worker that recovers
them. The fence closes both gaps:

* **Owner death.** The owner starts the fence once, at start-up, in a
  session of its own (a kill of the owner's process group does not reach
  it) and keeps the write end of a pipe to it. The fence polls the read end
  for ``POLLHUP`` only: when the last write end closes (the owner exited,
  however it died) it kills everything it guards, removes the slot cgroups
  and exits.
* **Self-fencing.** A worker gives every job it holds a deadline on
  ``CLOCK_MONOTONIC`` (when it sent the claim or renewal that last set the
  job's lease, plus the lease, less a margin: :mod:`stockade.engine.fencing`)
  and extends it after each successful renewal. When a job's deadline
  passes the fence kills it, so it is dead before its lease expires and
  another worker can recover it.

The owner tells the fence what to guard in one-line messages (each one
``write``, at most ``PIPE_BUF`` bytes, so threads never interleave them)::

    C JOB PATH       JOB is about to be born in slot cgroup PATH (written before the spawn)
    T JOB PGID       JOB's process group, for the process-tree kill (no cgroup)
    E JOB            JOB's processes are gone (forget its process group)
    R PATH           slot cgroup PATH was removed (forget it)
    D WHEN JOB...    the JOBs' deadline, CLOCK_MONOTONIC seconds
    X JOB...         the JOBs have no deadline any more

The fence reads the pipe only every :data:`DRAIN_INTERVAL` and just before it
acts on a deadline, so a worker running a thousand jobs a second does not
wake it per message; the pipe is widened to hold far more than it receives
in that time. Acting only after reading everything written so far is what
makes a deadline safe against its own extension: an extension written
before the deadline is always seen before the fence kills.

A slot cgroup runs one job at a time, so the fence kills the cgroup of a
job whose deadline passed only while that job is its latest occupant (a
later ``C`` for the same path means the job's processes are gone: a slot
starts its next job only then). A deadline kill freezes the cgroup,
SIGKILLs every process in it and thaws it, instead of writing
``cgroup.kill``: the owner lives on and uses the slot again, and ``clone3``
kills at birth every child created in a cgroup that has had ``cgroup.kill``
written (see :mod:`stockade.sandbox.cgroup`).

The pure part, :class:`Guard`, decides what to kill when; :func:`serve` is
its I/O. :func:`start` spawns the fence as a bare interpreter that imports
this module and nothing else (no ``signal``, whose ``enum`` import would
double its start-up): on the development VM that costs the owner about
0.3 ms, where a fork of ``stockade exec`` cost it 10 ms, mostly in the
copy-on-write faults the owner took afterwards.

**Reattach mode** (``stockade worker --reattach``, see
:mod:`stockade.engine.reattach`): the fence also listens on a Unix socket
(``DATA_DIR/spool/NAME/fence.sock``, passed as fd 4; its path is the last
argument). The owner marks each job it launches through the spool shim
(:mod:`stockade.sandbox.spoolshim`) reattachable::

    K JOB            JOB outlives the owner until its deadline
    S JOB...         (a new owner) I take these over: kill the other kept
                     jobs now, then answer ``ok``

At ``POLLHUP`` the fence then kills what is not kept (or has no deadline)
and goes on guarding the kept jobs' deadlines with no owner; a worker
restarted under the same name connects (the fence greets it with its pid),
says which jobs it takes over and from then on extends their deadlines as
its own. The fence exits once it has no owner and no kept job waiting.
In that mode the worker's slot cgroups are named after the fence
(:func:`stockade.sandbox.cgroup.hold_by`), so that a sweep leaves a kept
job's cgroup alone while the fence that bounds it lives. A per-job shim,
not a long-lived per-slot supervisor, is the job's parent: the per-slot
one is where this can grow next.
"""

from __future__ import annotations

import errno
import heapq
import os
import select
import sys
import time

__all__ = [
    "DRAIN_INTERVAL", "Fence", "Guard", "Target", "active", "attach", "forget", "serve", "start",
    "sweep",
]  # fmt: skip

#: Seconds between two reads of the pipe while no deadline is due.
DRAIN_INTERVAL = 0.5
#: How long a kill waits for the killed processes to be gone.
KILL_WAIT = 5.0
_SIGKILL = 9  # not signal.SIGKILL: the fence does not import signal (and enum) at start-up
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031
_PIPE_BUF = 4096
#: The fence's end of the pipe, in the fence.
_FD = 3
#: What the fence runs: this file as a top-level module (importing the
#: ``stockade.sandbox`` package would import the sandbox interface and pydantic's
#: kin), with the owner's package root for the rare process-tree kill; both
#: after the standard library, so no file beside this one shadows a module of it.
_PROGRAM = "import sys; sys.path += sys.argv[1:3]; import fence; fence.serve(3, *sys.argv[3:])"
#: The listening socket of a reattach-mode fence, in the fence.
_LISTEN_FD = 4


class Target:
    """What to kill for one job: its slot cgroup ``path``, or its process group ``pgid``."""

    __slots__ = ("job", "path", "pgid")

    def __init__(self, job: str, path: str | None = None, pgid: int = 0) -> None:
        self.job, self.path, self.pgid = job, path, pgid

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Target) and (self.job, self.path, self.pgid) == (
            other.job, other.path, other.pgid,
        )  # fmt: skip

    def __hash__(self) -> int:
        return hash((self.job, self.path, self.pgid))

    def __repr__(self) -> str:
        return f"Target({self.job!r}, path={self.path!r}, pgid={self.pgid})"


class Guard:
    """What a fence guards and when each job must die: messages in, targets out.

    No I/O and no clock of its own: :func:`serve` feeds it the owner's lines
    and the time, and kills what it returns.
    """

    def __init__(self) -> None:
        #: Each guarded job's target.
        self.targets: dict[str, Target] = {}
        #: Each slot cgroup's latest job.
        self.occupant: dict[str, str] = {}
        self.deadlines: dict[str, float] = {}
        #: Jobs whose deadline passed: killed as soon as they are guarded.
        self.expired: set[str] = set()
        #: Reattachable jobs (``K``): they outlive their owner until their deadline.
        self.kept: set[str] = set()
        self._heap: list[tuple[float, str]] = []

    def apply(self, line: str) -> list[Target]:
        """Take one message; the targets it makes due at once (a job whose
        deadline passed before it was launched)."""
        kind, _, rest = line.partition(" ")
        if kind == "C":
            job, _, path = rest.partition(" ")
            previous = self.occupant.get(path)
            if previous is not None and previous != job:
                self.targets.pop(previous, None)
            self.occupant[path] = job
            return self._guard(Target(job, path=path))
        if kind == "T":
            job, _, pgid = rest.partition(" ")
            return self._guard(Target(job, pgid=int(pgid)))
        if kind == "R":
            last = self.occupant.pop(rest, None)
            if last is not None:
                self.targets.pop(last, None)
        elif kind == "E":
            target = self.targets.get(rest)
            if target is not None and target.path is None:
                del self.targets[rest]
        elif kind == "D":
            when, *jobs = rest.split(" ")
            deadline = float(when)
            for job in jobs:
                self.deadlines[job] = deadline
                self.expired.discard(job)
                heapq.heappush(self._heap, (deadline, job))
        elif kind == "X":
            for job in rest.split(" "):
                self.deadlines.pop(job, None)
                self.expired.discard(job)
                self.kept.discard(job)
        else:
            return self._owner_change(kind, rest)
        return []

    def _owner_change(self, kind: str, rest: str) -> list[Target]:
        """``K JOB...``: reattachable jobs; ``S JOB...``: a new owner takes these over."""
        if kind == "K":
            self.kept.update(rest.split(" "))
        elif kind == "S":
            return self.adopt(rest.split(" ") if rest else [])
        return []

    def adopt(self, jobs: list[str]) -> list[Target]:
        """A new owner takes ``jobs`` over: the other kept jobs are due now."""
        drop = self.kept - set(jobs)
        self.kept &= set(jobs)
        return self._forget(drop)

    def orphan(self) -> list[Target]:
        """The owner is gone: what dies now (everything but the kept jobs that
        have a deadline, which wait for a new owner until it passes)."""
        self.kept = {job for job in self.kept if job in self.deadlines}
        doomed = [t for t in self.everything() if t.job not in self.kept]
        for target in doomed:
            self.targets.pop(target.job, None)
            if target.path is not None:
                self.occupant.pop(target.path, None)
        return doomed

    def holding(self) -> bool:
        """Whether a kept job still waits for an owner (its deadline not passed)."""
        return any(job in self.deadlines for job in self.kept)

    def _forget(self, jobs: set[str]) -> list[Target]:
        out: list[Target] = []
        for job in jobs:
            self.deadlines.pop(job, None)
            target = self.targets.pop(job, None)
            if target is not None and self._current(target):
                out.append(target)
                if target.path is not None:
                    del self.occupant[target.path]
        return out

    def _guard(self, target: Target) -> list[Target]:
        self.targets[target.job] = target
        return [target] if target.job in self.expired else []

    def next_deadline(self) -> float | None:
        """The earliest deadline still set, if any."""
        heap = self._heap
        while heap and self.deadlines.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)  # extended or cleared since
        return heap[0][0] if heap else None

    def due(self, now: float) -> list[Target]:
        """Targets of jobs whose deadline is ``now`` or earlier (each once)."""
        out: list[Target] = []
        while (first := self.next_deadline()) is not None and first <= now:
            _, job = heapq.heappop(self._heap)
            del self.deadlines[job]
            self.expired.add(job)
            self.kept.discard(job)
            target = self.targets.get(job)
            if target is not None and self._current(target):
                out.append(target)
        return out

    def _current(self, target: Target) -> bool:
        return target.path is None or self.occupant.get(target.path) == target.job

    def everything(self) -> list[Target]:
        """Every target: what dies with the owner (each slot cgroup once)."""
        paths = [Target(job, path=path) for path, job in self.occupant.items()]
        return paths + [t for t in self.targets.values() if t.path is None]


class Fence:
    """The owner's side: the fence's pid and the write end of its pipe."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self._fd: int | None = fd

    @property
    def alive(self) -> bool:
        """False once a write found the fence gone (its jobs are unguarded)."""
        return self._fd is not None

    def born_in(self, job: str, path: str) -> None:
        """``job`` is about to be spawned into slot cgroup ``path``."""
        self._send(f"C {job} {path}\n")

    def tree(self, job: str, pgid: int) -> None:
        """``job`` was spawned as process group ``pgid`` (no slot cgroup)."""
        self._send(f"T {job} {pgid}\n")

    def ended(self, job: str) -> None:
        """``job``'s processes are gone."""
        self._send(f"E {job}\n")

    def keep(self, job: str) -> None:
        """``job`` is reattachable: it outlives this owner until its deadline."""
        self._send(f"K {job}\n")

    def sync(self, jobs: list[str], timeout: float = 2 * KILL_WAIT) -> bool:
        """Take the kept ``jobs`` over (an attached owner): the fence kills
        the other jobs it kept and answers; whether it did in ``timeout``."""
        self._send("S" + "".join(" " + job for job in jobs) + "\n")
        fd = self._fd
        if fd is None:
            return False
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(int(timeout * 1000)):
            return False
        try:
            return os.read(fd, 16) == b"ok\n"
        except OSError:
            return False

    def removed(self, path: str) -> None:
        """Slot cgroup ``path`` is gone."""
        self._send(f"R {path}\n")

    def deadline(self, when: float, jobs: list[str]) -> None:
        """Kill ``jobs`` once ``CLOCK_MONOTONIC`` reaches ``when``, unless extended."""
        self._send_jobs(f"D {when:.6f}", jobs)

    def clear(self, jobs: list[str]) -> None:
        """``jobs`` have no deadline any more."""
        self._send_jobs("X", jobs)

    def _send_jobs(self, head: str, jobs: list[str]) -> None:
        line = head
        for job in jobs:
            if len(line) + len(job) + 2 > _PIPE_BUF:
                self._send(line + "\n")
                line = head
            line += " " + job
        if line != head:
            self._send(line + "\n")

    def _send(self, text: str) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            os.write(fd, text.encode())
        except OSError as exc:
            self._fd = None
            os.close(fd)
            import logging

            logging.getLogger("stockade.fence").error(
                "the fence (pid %d) is gone (%s): jobs are not guarded", self.pid, exc
            )

    def close(self) -> None:
        """Close the pipe: the fence kills what it guards and exits."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


_active: list[Fence] = []


def active() -> Fence | None:
    """This process's fence, if :func:`start` made one."""
    return _active[0] if _active else None


def forget() -> None:
    """This process has no fence any more (it closed the one it attached to)."""
    _active.clear()


def start(listen: str | None = None) -> Fence:
    """Start this process's fence (once per process; later calls return it).

    With ``listen`` (reattach mode), the fence also listens on a Unix socket
    at that path (in a private directory): when this process dies, the
    fence keeps its reattachable jobs until their deadlines, and a restarted
    owner takes them over with :func:`attach`.

    ``posix_spawn`` (vfork-style: no copy of this process's page tables, and
    none of the copy-on-write faults a fork would cost this process
    afterwards) of a bare interpreter (``-S -I``) that imports only this
    module. Its start-up runs beside the owner; the pipe buffers what the
    owner says meanwhile, so nothing is missed even if the owner dies first.
    """
    if _active and _active[0].alive:
        return _active[0]
    import fcntl

    read, write = os.pipe2(os.O_CLOEXEC)
    if read == _FD:  # a dup2 onto itself would leave it close-on-exec
        read, old = fcntl.fcntl(read, fcntl.F_DUPFD_CLOEXEC, _FD + 1), read
        os.close(old)
    try:  # noqa: SIM105 - contextlib is not imported here for this alone
        fcntl.fcntl(write, _F_SETPIPE_SZ, _PIPE_SIZE)
    except OSError:
        pass  # the default 64 KiB holds seconds of messages too
    here = os.path.dirname(os.path.abspath(__file__))
    package = os.path.dirname(os.path.dirname(here))
    actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
        (os.POSIX_SPAWN_DUP2, read, _FD),
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDWR, 0),
        (os.POSIX_SPAWN_DUP2, 0, 1),
        (os.POSIX_SPAWN_DUP2, 0, 2),
    ]
    argv = [sys.executable, "-S", "-I", "-c", _PROGRAM, here, package]
    server = None
    try:
        if listen is not None:
            server = _listening(listen)
            actions.append((os.POSIX_SPAWN_DUP2, server, _LISTEN_FD))
            argv.append(listen)
        if not sys.executable:
            raise FileNotFoundError("no Python interpreter path (sys.executable is empty)")
        pid = os.posix_spawn(sys.executable, argv, {}, file_actions=actions, setsid=True)
    except OSError as exc:
        os.close(write)
        from stockade.errors import SandboxError

        raise SandboxError(
            f"cannot start the fence process that kills jobs left behind: {exc}"
        ) from exc
    finally:
        os.close(read)
        if server is not None:
            os.close(server)
    _active[:] = [Fence(pid, write)]
    return _active[0]


def _listening(path: str) -> int:
    """A Unix socket listening at ``path`` (bound through its directory's
    descriptor: a long data directory would pass the 108-byte limit)."""
    import socket

    directory = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        short = f"/proc/self/fd/{directory}/{os.path.basename(path)}"
        try:  # noqa: SIM105 - no contextlib, as above
            os.unlink(path)
        except FileNotFoundError:
            pass
        server.bind(short)
        server.listen(4)
    except OSError:
        server.close()
        raise
    finally:
        os.close(directory)
    return server.detach()


def attach(path: str) -> Fence | None:
    """Become the owner of the fence listening at ``path`` (a dead owner's of
    the same name, still guarding its reattachable jobs); ``None`` if none
    listens there. The caller then says which jobs it takes over (:meth:`Fence.sync`)."""
    import socket
    import struct

    try:
        directory = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(f"/proc/self/fd/{directory}/{os.path.basename(path)}")
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        conn.settimeout(2 * DRAIN_INTERVAL + 1)
        hello = conn.recv(32)  # the fence's pid (the credentials are its starter's)
    except OSError:
        conn.close()
        return None
    finally:
        os.close(directory)
    _, uid, _ = struct.unpack("3i", creds)
    if uid != os.getuid() or not hello.endswith(b"\n") or not hello[:-1].isdigit():
        conn.close()  # not our user's, or a fence that has an owner already
        return None
    conn.settimeout(None)
    pid = int(hello)
    _active[:] = [Fence(pid, conn.detach())]
    return _active[0]


def serve(read: int, listen: str | None = None) -> None:
    """The fence's loop: guard what the owner says on ``read`` until the owner
    is gone; with ``listen`` (the path of the socket on fd 4), keep the
    reattachable jobs until their deadlines and take a new owner's word."""
    try:  # noqa: SIM105 - no contextlib: the fence imports as little as it can
        _write("/proc/self/comm", "stockade-fence")  # for ps and top
    except OSError:
        pass
    guard = Guard()
    owner: int | None = read
    os.set_blocking(read, False)
    poller = select.poll()
    poller.register(read, 0)  # POLLHUP only: data does not wake the fence
    server = -1
    if listen is not None:
        server = _LISTEN_FD
        poller.register(server, select.POLLIN)
    pending = b""
    try:
        while True:
            first = guard.next_deadline()
            wait = DRAIN_INTERVAL
            if first is not None:
                wait = min(wait, max(first - time.monotonic(), 0.0))
            events = dict(poller.poll(int(wait * 1000) + 1))
            due: list[Target] = []
            if owner is not None:
                pending, eof, due = _drain(owner, pending, guard)
                if eof or events.get(owner, 0) & (select.POLLHUP | select.POLLERR):
                    _orphaned(guard, owner, poller, keep=listen is not None)
                    owner, pending, due = None, b"", []
            if server in events:
                owner = _accept(server, owner, poller)
            for target in due + guard.due(time.monotonic()):
                _kill(target, owner_alive=owner is not None)
            if owner is None and not guard.holding():
                return
    finally:
        if listen is not None:
            try:  # noqa: SIM105 - no contextlib, as above
                os.unlink(listen)
            except OSError:
                pass


def _orphaned(guard: Guard, owner: int, poller: select.poll, *, keep: bool) -> None:
    """The owner is gone: kill everything, or with ``keep`` all but the kept jobs."""
    poller.unregister(owner)
    os.close(owner)
    for target in guard.orphan() if keep else guard.everything():
        _kill(target, owner_alive=False)


def _accept(server: int, owner: int | None, poller: select.poll) -> int | None:
    """A new owner on the listening socket, if there is none (a second is refused)."""
    try:
        conn = _socket_accept(server)
    except OSError:
        return owner
    if owner is not None:
        os.close(conn)
        return owner
    try:
        os.write(conn, f"{os.getpid()}\n".encode())
    except OSError:
        os.close(conn)
        return None
    os.set_blocking(conn, False)
    poller.register(conn, 0)
    return conn


def _socket_accept(server: int) -> int:
    import _socket  # the C module: the fence does not import socket (and enum)

    sock = _socket.socket(fileno=server)
    try:
        fd: int = sock._accept()[0]  # type: ignore[attr-defined]
    finally:
        sock.detach()
    return fd


def _drain(read: int, pending: bytes, guard: Guard) -> tuple[bytes, bool, list[Target]]:
    """Apply every complete line in the pipe; the partial rest, EOF, due targets.
    A sync (``S``) is answered once the jobs it drops are killed."""
    due: list[Target] = []
    eof = False
    while True:
        try:
            chunk = os.read(read, _PIPE_SIZE)
        except BlockingIOError:
            break
        if not chunk:
            eof = True
            break
        pending += chunk
    *lines, pending = pending.split(b"\n")
    for line in lines:
        try:
            if line.startswith(b"S"):
                for target in guard.apply(line.decode()):
                    _kill(target, owner_alive=False)
                os.write(read, b"ok\n")
                continue
            due += guard.apply(line.decode())
        except (ValueError, OSError):
            continue  # not a message of ours: the fence goes on guarding
    return pending, eof, due


def _kill(target: Target, *, owner_alive: bool) -> None:
    """Kill a target; a slot cgroup of a dead owner is removed as well."""
    try:
        if target.path is None:
            kill_tree(target.pgid, target.job)
        elif owner_alive:
            freeze_kill(target.path)
        else:
            kill_cgroup(target.path, remove=True)
    except OSError:
        pass  # gone already, or not ours to kill: nothing more the fence can do


def sweep() -> list[str]:
    """Kill and remove the slot cgroups on this host whose owner is dead; their paths.

    A worker runs this before it recovers any job: a dead owner's fence
    normally did it already, but a fence can die too (or still be at it).
    """
    from stockade.sandbox.cgroup import cgroup2_root, owner_alive

    root = cgroup2_root()
    if root is None:
        return []
    base = os.path.join(root, "stockade")
    try:
        names = os.listdir(base)
    except OSError:
        return []
    swept = []
    for name in names:
        if not owner_alive(name):
            path = os.path.join(base, name)
            try:
                kill_cgroup(path, remove=True)
            except OSError:
                continue
            swept.append(path)
    return swept


def kill_cgroup(path: str, *, remove: bool) -> None:
    """SIGKILL everything in cgroup ``path`` (``cgroup.kill``), wait until it is
    empty and, with ``remove``, remove it with any child cgroups."""
    if not os.path.isdir(path):
        return
    try:
        _write(os.path.join(path, "cgroup.kill"), "1")
    except FileNotFoundError:
        _signal_until_empty(path)
    _wait_empty(path)
    if remove:
        _remove_tree(path)


def freeze_kill(path: str) -> None:
    """SIGKILL everything in cgroup ``path`` without ``cgroup.kill``: freeze it
    (nothing forks while frozen), kill each process, thaw it."""
    if not _populated(path):
        return
    freeze = os.path.join(path, "cgroup.freeze")
    try:
        _write(freeze, "1")
    except FileNotFoundError:
        _signal_until_empty(path)
        return
    try:
        deadline = time.monotonic() + 1.0
        while not _frozen(path) and time.monotonic() < deadline:
            time.sleep(0.001)
        _signal_until_empty(path)
    finally:
        _write(freeze, "0")
    _wait_empty(path)


def _signal_until_empty(path: str) -> None:
    for _ in range(100):
        pids = _pids(path)
        if not pids:
            return
        for pid in pids:
            _sigkill(pid)
        if _frozen(path):
            return  # nothing was born meanwhile; the killed leave as they die


def kill_tree(pgid: int, marker: str) -> None:
    """SIGKILL process group ``pgid``, its leader's descendants and every process
    marked ``STOCKADE_JOB_ID=marker``, until a pass finds none."""
    from stockade.sandbox import proctree

    try:  # noqa: SIM105 - no contextlib, as above
        os.killpg(pgid, _SIGKILL)
    except OSError:
        pass  # the group is gone; its members that left it are found below
    for _ in range(50):
        pids = set(proctree.descendants(pgid)) | set(proctree.pids_with_marker(marker))
        pids.discard(os.getpid())
        if not pids:
            return
        for pid in pids:
            _sigkill(pid)
        time.sleep(0.01)


def _sigkill(pid: int) -> None:
    try:  # noqa: SIM105 - no contextlib, as above
        os.kill(pid, _SIGKILL)
    except OSError:
        pass  # gone already


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as fh:
        fh.write(text)


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read()
    except OSError:
        return ""


def _pids(path: str) -> list[int]:
    """Pids in cgroup ``path`` and its child cgroups (an OCI container's are below the slot's)."""
    pids: list[int] = []
    for parent, _, _ in os.walk(path):
        pids += [int(x) for x in _read(os.path.join(parent, "cgroup.procs")).split()]
    return pids


def _populated(path: str) -> bool:
    return "populated 1" in _read(os.path.join(path, "cgroup.events"))


def _frozen(path: str) -> bool:
    return "frozen 1" in _read(os.path.join(path, "cgroup.events"))


def _wait_empty(path: str) -> None:
    deadline = time.monotonic() + KILL_WAIT
    while _populated(path) and time.monotonic() < deadline:
        time.sleep(0.002)


def _remove_tree(path: str) -> None:
    """Remove cgroup ``path`` and its child cgroups, deepest first."""
    try:
        for parent, dirs, _ in os.walk(path, topdown=False):
            for name in dirs:
                rmdir(os.path.join(parent, name))
        rmdir(path)
    except OSError:
        pass  # still busy or not ours: left for the next sweep


def rmdir(path: str | os.PathLike[str]) -> None:
    """Remove an empty cgroup directory, waiting out a brief EBUSY after its last exit."""
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            time.sleep(0.002)
