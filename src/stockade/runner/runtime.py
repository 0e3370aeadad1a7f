"""Attempts' runtime directories: the input, output and state files.

They exist only while an attempt runs, so they go to memory when the host
offers a private place for them — ``$XDG_RUNTIME_DIR/stockade``, or
``/dev/shm/stockade-UID`` — and under the data directory otherwise.
Creating and removing them on a disk was most of what an attempt of a
short job cost beyond the process itself.

Each directory is named ``PID.JOB_ID-ATTEMPT`` after the process that runs
the attempt. A process killed outright (SIGKILL, OOM) cannot remove its
own; the first attempt of a later process removes those whose owner is gone,
so memory is not filled by the leftovers of crashed workers.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["make_runtime", "read_file", "remove_runtime", "runtime_dir", "write_file"]

_bases: dict[str, Path] = {}
#: The files every attempt's runtime directory holds (``input.json`` only some).
_ALWAYS = ("output.env", "state.json")


def runtime_dir(data_dir: Path, job_id: str, attempt: int) -> Path:
    """The (not yet created) runtime directory of one attempt."""
    key = str(data_dir)
    base = _bases.get(key)
    if base is None:
        base = _pick_base(data_dir)
        _prune_dead_owners(base)
        _bases[key] = base
    return base / f"{os.getpid()}.{job_id}-{attempt}"


def make_runtime(runtime: Path) -> None:
    """Create an attempt's runtime directory (and its base, the first time)."""
    try:
        os.mkdir(runtime)
    except FileNotFoundError:
        os.makedirs(runtime, exist_ok=True)
    except FileExistsError:
        pass


def write_file(path: str, data: bytes) -> None:
    """Create or truncate ``path`` and write ``data`` (plain system calls)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def read_file(path: str) -> str:
    """The text of ``path``: undecodable bytes replaced, newlines as text mode reads them."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8", errors="replace")
    if "\r" in text:  # universal newlines, as text-mode reading had
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


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
        os.unlink(f"{runtime}/input.json")
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
