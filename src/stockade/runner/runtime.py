"""Attempts' runtime directories: the input, output and state files.

They exist only while an attempt runs, so they go to memory when the host
offers a private place for them — ``$XDG_RUNTIME_DIR/stockade``, or
``/dev/shm/stockade-UID`` — and under the data directory otherwise.
Creating and removing them on a disk was most of what an attempt of a
short job cost beyond the process itself.

Each directory is named ``PID.N`` after the process that runs the attempt.
A process killed outright (SIGKILL, OOM) cannot remove its own; the first
attempt of a later process removes those whose owner is gone, so memory is
not filled by the leftovers of crashed workers.

A directory is used again by a later attempt of the same process
(:meth:`Runtime.recycle`) only when nothing of its job can touch it any
more (every process of the job is gone: its slot was given up at the exit)
and the job left it as stockade made it: the same two files, the same
inodes, one link each, the same owners and modes, no other entry but the
input file stockade wrote. The output file is emptied and the state file
rewritten for the next attempt. On a busy worker this saves creating and
evicting a directory, two files and a page of memory per job, which was a
tenth of the worker's CPU time per job of ``/bin/true``. Anything else is
removed, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import stat
from collections.abc import Callable
from pathlib import Path

from stockade.errors import JobFileError, JobFileProblem
from stockade.private import private_dir
from stockade.runner import jobfile
from stockade.runner.spec import DEFAULT_MAX_OUTPUT

__all__ = [
    "POOL",
    "Runtime",
    "RuntimePool",
    "acquire",
    "drain",
    "make_runtime",
    "remove_runtime",
]

_OUTPUT, _STATE, _INPUT = "output.env", "state.json", "input.json"
#: The files every attempt's runtime directory holds (``input.json`` only some).
_ALWAYS = (_OUTPUT, _STATE)


#: Clean directories kept per base for later attempts, at most.
_POOL_MAX = 32
_OPEN_FILE = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW


class RuntimePool:
    """One process's runtime directories: where they go for each data
    directory (picked, and its dead owners' leftovers pruned, on first use),
    and the clean ones kept for later attempts (at most ``keep`` per base).

    ``place`` picks the base for a data directory (tests give their own)."""

    def __init__(self, keep: int = _POOL_MAX, place: Callable[[Path], Path] | None = None) -> None:
        self.keep = keep
        self._place = place or _pick_base
        self._bases: dict[str, Path] = {}
        self._kept: dict[Path, list[Runtime]] = {}
        self._names = itertools.count(1)

    def base(self, data_dir: Path) -> Path:
        """Where the runtime directories of ``data_dir``'s attempts go."""
        key = str(data_dir)
        base = self._bases.get(key)
        if base is None:
            base = self._place(data_dir)
            _prune_dead_owners(base)
            self._bases[key] = base
        return base

    def acquire(self, data_dir: Path) -> Runtime:
        """A runtime directory for one attempt: a clean one kept from an
        earlier attempt, else a new one (OSError if it cannot be made)."""
        base = self.base(data_dir)
        kept = self._kept.get(base)
        if kept:
            return kept.pop()
        return Runtime.create(base / f"{os.getpid()}.{next(self._names)}", self)

    def kept(self, base: Path) -> list[Runtime]:
        """The clean directories kept under ``base`` (a copy)."""
        return list(self._kept.get(base, ()))

    def has_room(self, base: Path) -> bool:
        """Whether another directory under ``base`` may be kept."""
        return len(self._kept.get(base, ())) < self.keep

    def give_back(self, runtime: Runtime) -> None:
        """Keep ``runtime``, found clean, for a later attempt."""
        self._kept.setdefault(runtime.path.parent, []).append(runtime)

    def drain(self) -> None:
        """Remove the directories kept for later attempts (a worker that stops)."""
        for kept in self._kept.values():
            while kept:
                kept.pop().remove()


class Runtime:
    """One attempt's runtime directory with its output and state files.

    The directory and both files are held open, so :meth:`recycle` can tell
    by ``fstat`` whether the job replaced, linked or re-moded them."""

    def __init__(
        self, path: Path, fds: tuple[int, int, int], pool: RuntimePool | None = None
    ) -> None:
        self.path = path
        #: Where :meth:`recycle` keeps it (None: it is removed).
        self.pool = pool
        self.output = f"{path}/{_OUTPUT}"
        self.state = f"{path}/{_STATE}"
        self._fds: tuple[int, int, int] | None = fds
        # (inode, mode, uid) of the directory, output and state file as made.
        self._made = [_identity(os.fstat(fd)) for fd in fds]

    @classmethod
    def create(cls, path: Path, pool: RuntimePool | None = None) -> Runtime:
        """Make the directory ``path`` with an empty output file and an empty
        state file (OSError if it cannot be made); ``pool`` keeps it later."""
        make_runtime(path)
        fds: list[int] = []
        try:
            fds.append(os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
            fds.append(os.open(f"{path}/{_OUTPUT}", _OPEN_FILE, 0o600))
            fds.append(os.open(f"{path}/{_STATE}", _OPEN_FILE, 0o600))
            return cls(path, (fds[0], fds[1], fds[2]), pool)
        except BaseException:
            for fd in fds:
                os.close(fd)
            remove_runtime(path)
            raise

    def write_state(self, data: bytes) -> None:
        """Make the state file hold exactly ``data``."""
        assert self._fds is not None
        fd = self._fds[2]
        view = memoryview(data)
        offset = 0
        while offset < len(view):
            offset += os.pwrite(fd, view[offset:], offset)
        os.ftruncate(fd, len(data))

    def output_in_place(self, limit: int = DEFAULT_MAX_OUTPUT) -> str | None:
        """The output file's text while its path still names the file stockade
        made, ``""`` if the job removed it, None if it put something else there
        (then :meth:`read_output` reads that, in a thread).

        The file in place is read through the fd stockade holds: a regular file
        in stockade's own directory, nothing to resolve, at most ``limit``
        bytes, so this is safe on the event loop."""
        try:
            info = os.lstat(self.output)
        except FileNotFoundError:
            return ""
        except OSError:
            return None
        if self._fds is None or _identity(info) != self._made[1]:
            return None
        if not info.st_size:
            return ""
        fd = self._fds[1]
        return _text(jobfile.read_open(fd, os.fstat(fd), limit=limit, shown="$STOCKADE_OUTPUT"))

    def read_output(self, limit: int = DEFAULT_MAX_OUTPUT) -> str:
        """The text of the output file the job left; ``""`` if it removed it.

        Read by :mod:`~stockade.runner.jobfile`, no symlink followed: a job
        that put a symlink (to a file it may not read itself), a FIFO (which
        would block the reader) or more than ``limit`` bytes there gets a
        :class:`~stockade.errors.JobFileError`."""
        try:
            data = jobfile.read(
                str(self.path), _OUTPUT, limit=limit, shown="$STOCKADE_OUTPUT",
                where="runtime directory", symlinks=False,
            )  # fmt: skip
        except JobFileError as exc:
            if exc.problem is JobFileProblem.MISSING:
                return ""
            raise
        return _text(data)

    def recycle(self) -> None:
        """Keep the directory for a later attempt if the job left it as it
        was made (see the module docstring), else remove it.

        Only for an attempt none of whose processes is left: one still
        running could write into the next attempt's files."""
        pool = self.pool
        if pool is not None and pool.has_room(self.path.parent) and self._clean():
            pool.give_back(self)
        else:
            self.remove()

    def _clean(self) -> bool:
        """Whether the directory is as made; empties the output file if so."""
        if self._fds is None:
            return False
        try:
            stats = [os.fstat(fd) for fd in self._fds]
            if [_identity(st) for st in stats] != self._made:
                return False
            if stats[0].st_nlink != 2 or stats[1].st_nlink != 1 or stats[2].st_nlink != 1:
                return False  # a subdirectory, or a file linked elsewhere
            inodes = {_OUTPUT: self._made[1][0], _STATE: self._made[2][0]}
            with os.scandir(self._fds[0]) as entries:
                names = [(e.name, e.inode(), e.is_file(follow_symlinks=False)) for e in entries]
            for name, inode, regular in names:
                if name == _INPUT and regular:
                    os.unlink(_INPUT, dir_fd=self._fds[0])  # stockade wrote it
                elif inodes.pop(name, None) != inode or not regular:
                    return False
            if inodes:
                return False
            if stats[1].st_size:
                os.ftruncate(self._fds[1], 0)
        except OSError:
            return False
        return True

    def remove(self) -> None:
        """Close the directory's files and remove it with whatever is in it."""
        fds, self._fds = self._fds, None
        for fd in fds or ():
            os.close(fd)
        remove_runtime(self.path)


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, stat.S_IMODE(st.st_mode) | stat.S_IFMT(st.st_mode), st.st_uid


def _text(data: bytearray) -> str:
    """Undecodable bytes replaced, newlines as text-mode reading gives them."""
    text = data.decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def make_runtime(runtime: Path) -> None:
    """Create an attempt's runtime directory (and its base, the first time)."""
    try:
        os.mkdir(runtime, 0o700)
    except FileNotFoundError:
        os.makedirs(runtime, 0o700, exist_ok=True)
    except FileExistsError:
        pass


def remove_runtime(runtime: Path) -> None:
    """Remove an attempt's runtime directory: the files stockade put there one
    by one (cheaper than a tree walk), the walk only if the job added some.

    ``input.json`` exists only for some input formats: it is looked for only
    when the directory is not empty without it (a failed unlink per attempt
    cost more than the call itself)."""
    for name in _ALWAYS:
        with contextlib.suppress(OSError):
            os.unlink(f"{runtime}/{name}")
    try:
        os.rmdir(runtime)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    with contextlib.suppress(OSError):
        os.unlink(f"{runtime}/{_INPUT}")
    try:
        os.rmdir(runtime)
    except FileNotFoundError:
        pass
    except OSError:
        import shutil  # only when the job left files of its own there

        shutil.rmtree(runtime, ignore_errors=True)


def _pick_base(data_dir: Path) -> Path:
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    candidates = [Path(xdg) / "stockade"] if xdg else []
    candidates.append(Path(f"/dev/shm/stockade-{os.getuid()}"))
    for base in candidates:
        try:
            base.mkdir(mode=0o700, exist_ok=True)
            st = base.stat()
        except OSError:
            continue
        if st.st_uid == os.getuid() and (st.st_mode & 0o077) == 0:
            return base
    private_dir(data_dir / "run")  # holds every attempt's input: stockade's alone
    return data_dir / "run"


def _prune_dead_owners(base: Path) -> None:
    """Remove runtime directories left by processes that no longer exist."""
    try:
        entries = os.listdir(base)
    except OSError:
        return
    for name in entries:
        owner, dot, _ = name.partition(".")
        if not dot or not owner.isdigit() or os.path.exists(f"/proc/{owner}"):
            continue
        remove_runtime(base / name)


#: This process's pool (see :class:`RuntimePool`), drained at exit.
POOL = RuntimePool()
atexit.register(POOL.drain)


def acquire(data_dir: Path) -> Runtime:
    """:meth:`RuntimePool.acquire` of this process's :data:`POOL`."""
    return POOL.acquire(data_dir)


def drain() -> None:
    """:meth:`RuntimePool.drain` of this process's :data:`POOL`."""
    POOL.drain()
