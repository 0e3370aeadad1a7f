"""One attempt's spool: what the spool shim keeps of a job for a restarted worker.

``DATA_DIR/spool/WORKER/JOB-ATTEMPT.{out,err,pid,status}`` (see
:mod:`stockade.sandbox.spoolshim`, which writes them), and the attempt's
runtime directory ``JOB-ATTEMPT.run`` (its ``$STOCKADE_OUTPUT``, made there
by the runner so that it outlives the worker). The worker reads them back
here: whether the shim still lives, where the job's cgroup is, how it
ended, when it last wrote, and its output from a byte offset. The files sit in a
private directory, but a ``local`` job runs as the same user and could
reach them: they are opened without following symlinks, non-blocking,
regular files only, and read in bounded steps.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from stockade.runner.runtime import remove_runtime
from stockade.sandbox.usage import Usage

__all__ = ["STEP", "Spool", "live_attempts", "spool_root"]

#: The most bytes read from one stream's spool at a time.
STEP = 1 << 20
_STREAMS = {"stdout": "out", "stderr": "err"}
#: ``ru_inblock``/``ru_oublock`` count 512-byte sectors.
_SECTOR = 512
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def spool_root(data_dir: str | None, worker: str) -> Path:
    """``DATA_DIR/spool/WORKER``: a worker's spools and its fence's socket."""
    base = data_dir or os.environ.get("STOCKADE_DATA_DIR") or ".stockade"
    return Path(base).absolute() / "spool" / worker


def live_attempts(data_dir: str | None) -> set[str]:
    """``JOB.ATTEMPT`` of every attempt on this host whose spool shim still
    runs or whose end waits in the spool, whichever worker name spooled it: a
    job that outlived its worker, waiting for a restart to take it over and
    read its workspace (the spool goes once its end is recorded, or at the
    restart when the attempt is not adopted)."""
    found: set[str] = set()
    base = spool_root(data_dir, "-").parent
    try:
        roots = [entry for entry in os.scandir(base) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return found
    for root in roots:
        try:
            names = os.listdir(root.path)
        except OSError:
            continue
        for name in names:
            job_id, dash, run = name.removesuffix(".pid").rpartition("-")
            named = name.endswith(".pid") and dash and run.isdigit()
            if not named:
                continue
            spool = Spool(Path(root.path), job_id, int(run))
            # In this order: a shim writes its status before it dies.
            if spool.shim_alive() or spool.status() is not None:
                found.add(f"{job_id}.{run}")
    return found


class Spool:
    """The spool files of attempt ``run`` of ``job_id`` under ``root``."""

    def __init__(self, root: Path, job_id: str, run: int) -> None:
        self.prefix = str(root / f"{job_id}-{run}")

    def _read_small(self, suffix: str) -> str | None:
        try:
            fd = os.open(self.prefix + suffix, _OPEN)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return os.read(fd, 4096).decode("ascii", "replace")
        finally:
            os.close(fd)

    def status(self) -> tuple[int, int] | None:
        """``(exit code, signal)`` once the job has ended (0: none), else ``None``."""
        text = self._read_small(".status")
        if text is None:
            return None
        try:
            code, signum = (int(part) for part in text.split()[:2])
        except ValueError:
            return None
        return code, signum

    def usage(self) -> Usage | None:
        """The ended job's rusage as the shim wrote it after ``CODE SIGNAL``
        (``None``: not ended, or a status line without it, an older shim's)."""
        text = self._read_small(".status")
        fields = [] if text is None else text.split()
        if len(fields) < 7:
            return None
        try:
            utime, stime = float(fields[2]), float(fields[3])
            maxrss, inblock, oublock = (int(part) for part in fields[4:7])
        except ValueError:
            return None
        return Usage(
            cpu_user=utime, cpu_system=stime, max_rss=maxrss * 1024 if maxrss else None,
            read_bytes=inblock * _SECTOR, write_bytes=oublock * _SECTOR,
        )  # fmt: skip

    def _pid_fields(self) -> list[str]:
        text = self._read_small(".pid")
        return [] if text is None else text.split()

    def shim_pid(self) -> int | None:
        """The shim's pid as it wrote it (check :meth:`shim_alive` first)."""
        fields = self._pid_fields()
        return int(fields[0]) if fields and fields[0].isdigit() else None

    @property
    def runtime(self) -> Path:
        """The attempt's runtime directory (its ``$STOCKADE_OUTPUT`` file)."""
        return Path(self.prefix + ".run")

    def last_output(self) -> float | None:
        """When the job last wrote to stdout or stderr (the spools' mtime), if ever."""
        times = []
        for suffix in _STREAMS.values():
            with contextlib.suppress(OSError):
                info = os.lstat(f"{self.prefix}.{suffix}")
                if stat.S_ISREG(info.st_mode) and info.st_size:
                    times.append(info.st_mtime)
        return max(times, default=None)

    def shim_alive(self) -> bool:
        """Whether the shim that wrote ``.pid`` still runs (same pid, same start time)."""
        fields = self._pid_fields()
        if len(fields) < 2 or not fields[0].isdigit():
            return False
        try:
            with open(f"/proc/{fields[0]}/stat", encoding="ascii", errors="replace") as fh:
                data = fh.read()
        except OSError:
            return False
        state = data[data.rfind(")") + 2 :].split()
        return state[0] not in ("Z", "X") and state[19] == fields[1]  # a zombie is gone

    def cgroup(self) -> str | None:
        """The job's slot cgroup, as a path under the cgroup v2 mount, if known."""
        fields = self._pid_fields()
        if len(fields) < 4 or not fields[3].startswith("/stockade/"):
            return None
        from stockade.sandbox.cgroup import cgroup2_root

        root = cgroup2_root()
        return None if root is None else str(root) + fields[3]

    def read(self, stream: str, offset: int) -> bytes:
        """Up to :data:`STEP` bytes of ``stream``'s spool from ``offset``."""
        try:
            fd = os.open(f"{self.prefix}.{_STREAMS[stream]}", _OPEN)
        except OSError:
            return b""
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return b""
            return os.pread(fd, STEP, offset)
        finally:
            os.close(fd)

    def remove(self) -> None:
        """Remove the attempt's spool files (its end is recorded)."""
        for suffix in (".out", ".err", ".pid", ".status", ".pid.tmp", ".status.tmp"):
            with contextlib.suppress(OSError):
                os.unlink(self.prefix + suffix)
        remove_runtime(self.runtime)
