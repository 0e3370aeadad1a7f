"""Git workspaces: worktrees of a bare mirror kept under the data directory.

Each repository (URL or local path) gets one mirror, ``DATA_DIR/git/HASH.git``
(``git clone --mirror``), shared by every job that checks it out: a job's
workspace is a ``git worktree add --detach`` of it, so objects are not
copied and a checkout costs what writing the files costs. The mirror is
fetched only when the ref a job asks for is missing (a new branch or commit);
a branch that moved upstream is seen after the next fetch, not at once.

Every change of a mirror (clone, fetch, and adding, removing or pruning a
worktree: concurrent ``git worktree add`` calls read each other's
half-made entries and fail) takes an exclusive ``flock`` on ``HASH.lock``;
looking a ref up takes it shared. A checkout holds the lock for the time
git writes the files, so checkouts of one repository are one at a time.
Git runs without a terminal prompt (``GIT_TERMINAL_PROMPT=0``) and every
argument a user wrote comes after ``--`` or ``--end-of-options``: a repo or
ref never becomes an option.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from stockade.errors import WorkspaceError

__all__ = ["checkout", "mirror_path", "prune", "remove"]

#: Longest a clone or fetch may take.
GIT_TIMEOUT = 600.0


def mirror_path(data_dir: Path, repo: str) -> Path:
    """Where the mirror of ``repo`` lives."""
    digest = hashlib.sha256(repo.encode()).hexdigest()[:20]
    return data_dir / "git" / f"{digest}.git"


@contextlib.contextmanager
def _locked(mirror: Path, exclusive: bool) -> Iterator[None]:
    mirror.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(f"{mirror}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _git(*args: str, git_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    # The worktrees belong to the jobs' user once given to it: git must not
    # refuse to remove them as "dubious ownership".
    argv = [shutil.which("git") or "git", "-c", "safe.directory=*"]
    if git_dir is not None:
        argv += ["--git-dir", str(git_dir)]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
    try:
        return subprocess.run(
            [*argv, *args], capture_output=True, text=True, env=env, timeout=GIT_TIMEOUT,
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WorkspaceError(f"git {args[0]} could not run: {exc}") from exc


def _fail(what: str, proc: subprocess.CompletedProcess[str]) -> WorkspaceError:
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    return WorkspaceError(f"{what}: {lines[-1] if lines else f'git exited {proc.returncode}'}")


def _commit(mirror: Path, ref: str) -> str | None:
    proc = _git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}",
                git_dir=mirror)  # fmt: skip
    return proc.stdout.strip() if proc.returncode == 0 else None


def _update(mirror: Path, repo: str, ref: str) -> str:
    """Clone or fetch the mirror (exclusive lock held) until it has ``ref``."""
    if not (mirror / "HEAD").exists():
        partial = mirror.with_name(mirror.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        proc = _git("clone", "--mirror", "--quiet", "--", repo, str(partial))
        if proc.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise _fail(f"cannot clone {repo}", proc)
        os.rename(partial, mirror)
    else:
        proc = _git("fetch", "--quiet", "--prune", "origin", git_dir=mirror)
        if proc.returncode != 0:
            raise _fail(f"cannot fetch {repo}", proc)
    commit = _commit(mirror, ref)
    if commit is None:
        raise WorkspaceError(f"git ref {ref!r} is not in {repo}; give a branch, tag or commit")
    return commit


def checkout(data_dir: Path, repo: str, ref: str, dest: Path) -> str:
    """Make ``dest`` a detached worktree of ``repo`` at ``ref``; the commit."""
    mirror = mirror_path(data_dir, repo)
    with _locked(mirror, exclusive=False):
        commit = _commit(mirror, ref) if (mirror / "HEAD").exists() else None
    if commit is None:
        with _locked(mirror, exclusive=True):
            commit = _commit(mirror, ref) if (mirror / "HEAD").exists() else None
            if commit is None:
                commit = _update(mirror, repo, ref)
    with _locked(mirror, exclusive=True):
        proc = _git("worktree", "add", "--detach", "--quiet", "--", str(dest), commit,
                    git_dir=mirror)  # fmt: skip
    if proc.returncode != 0:
        raise _fail(f"cannot check out {ref} of {repo}", proc)
    return commit


def _mirror_of(worktree: Path) -> Path | None:
    """The mirror a worktree belongs to, read from its ``.git`` file."""
    try:
        text = (worktree / ".git").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not text.startswith("gitdir: "):
        return None
    return Path(text[8:].strip()).parent.parent


def remove(path: Path) -> None:
    """Remove a worktree and its entry in the mirror (``git worktree remove``)."""
    mirror = _mirror_of(path)
    if mirror is not None and (mirror / "HEAD").exists():
        with _locked(mirror, exclusive=True):
            proc = _git("worktree", "remove", "--force", "--force", str(path), git_dir=mirror)
        if proc.returncode == 0:
            return
    shutil.rmtree(path, ignore_errors=True)
    if mirror is not None:
        prune(mirror)


def prune(mirror: Path) -> None:
    """Forget worktrees of ``mirror`` whose directory is gone (``git worktree prune``)."""
    if (mirror / "HEAD").exists():
        with _locked(mirror, exclusive=True):
            _git("worktree", "prune", git_dir=mirror)


def prune_all(data_dir: Path) -> None:
    """:func:`prune` every mirror under ``data_dir``."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(data_dir / "git"):
            if entry.name.endswith(".git") and entry.is_dir(follow_symlinks=False):
                prune(Path(entry.path))
