"""Per-attempt workspaces: made fresh, removed or kept by policy, swept.

A task's ``workspace:`` (:class:`stockade.spec.workspace.WorkspaceSpec`)
gives each attempt a new directory under ``DATA_DIR/workspaces``: empty, a
copy of a template (symlinks copied as symlinks, never followed), or a git
worktree (:mod:`stockade.runner.gitmirror`). A sandbox gives it to the job's
user (:attr:`stockade.sandbox.base.LaunchRequest.fresh_workspace`).

A workspace is named ``PID-START-JOB.ATTEMPT`` after the process that made it
(its pid and start time, as slot cgroups are), so the owner can be judged
from the name alone. When the attempt ends it is removed, unless ``keep``
says otherwise (``always``, or ``on_failure`` for an attempt that did not
succeed): then a file ``NAME.keep`` beside it holds the time after which it
may go (``ttl``). :func:`sweep`, which workers run periodically, removes
kept workspaces past that time and any workspace whose owner is dead
without having marked it kept (a worker killed while its jobs ran); git
worktrees are removed with ``git worktree remove`` and the mirrors pruned,
so they keep no stale entries.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stockade.errors import WorkspaceError
from stockade.private import private_dir
from stockade.runner import gitmirror

__all__ = ["Plan", "Workspace", "create", "sweep", "workspaces_dir"]

_KEEP = ".keep"


@dataclass(frozen=True)
class Plan:
    """What a workspace starts with, and how long it stays."""

    template: str | None = None
    repo: str | None = None
    ref: str | None = None
    keep: str = "never"
    ttl: float = 24 * 3600.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def kept(self, succeeded: bool) -> bool:
        """Whether an attempt that ended so keeps its workspace."""
        return self.keep == "always" or (self.keep == "on_failure" and not succeeded)


def workspaces_dir(data_dir: Path) -> Path:
    return data_dir / "workspaces"


def _owner_prefix() -> str:
    from stockade.sandbox.proctree import start_time

    pid = os.getpid()
    return f"{pid}-{start_time(pid) or 0}-"


@dataclass
class Workspace:
    """One attempt's workspace directory."""

    path: Path
    plan: Plan
    commit: str | None = None

    def finish(self, succeeded: bool, now: float | None = None) -> bool:
        """Remove the workspace, or keep it for ``ttl`` seconds; whether kept."""
        if self.plan.kept(succeeded):
            expiry = (time.time() if now is None else now) + self.plan.ttl
            marker = Path(f"{self.path}{_KEEP}")
            marker.write_text(f"{expiry:.3f}\n", encoding="ascii")
            return True
        _remove(self.path, git=self.plan.repo is not None)
        return False


def create(data_dir: Path, job_id: str, attempt: int, plan: Plan) -> Workspace:
    """A new workspace for attempt ``attempt`` of ``job_id`` (blocking: run it
    in a thread). Raises :class:`WorkspaceError` with what went wrong."""
    base = workspaces_dir(data_dir)
    try:
        private_dir(data_dir)
        private_dir(base)
    except OSError as exc:
        raise WorkspaceError(f"cannot make the workspace directory {base}: {exc}") from exc
    path = base / f"{_owner_prefix()}{job_id}.{attempt}"
    if os.path.lexists(path):  # a rerun of the same attempt number in this process
        _remove(path, git=True)
    workspace = Workspace(path, plan)
    try:
        if plan.repo is not None:
            workspace.commit = gitmirror.checkout(data_dir, plan.repo, plan.ref or "HEAD", path)
        elif plan.template is not None:
            shutil.copytree(plan.template, path, symlinks=True)
        else:
            os.mkdir(path, 0o755)
        os.chmod(path, 0o755)
    except OSError as exc:
        _remove(path, git=plan.repo is not None)
        raise WorkspaceError(f"cannot make the workspace {path}: {exc}") from exc
    except WorkspaceError:
        _remove(path, git=plan.repo is not None)
        raise
    return workspace


def _remove(path: Path, *, git: bool) -> None:
    if git and (path / ".git").is_file():
        gitmirror.remove(path)
    if os.path.lexists(path):
        shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.unlink(f"{path}{_KEEP}")


def _expiry(marker: str) -> float | None:
    try:
        with open(marker, encoding="ascii") as fh:
            return float(fh.read().strip())
    except (OSError, ValueError):
        return None


def sweep(data_dir: Path, now: float | None = None, spare: Collection[str] = ()) -> list[str]:
    """Remove kept workspaces past their time and those of dead owners; their
    paths. ``spare``: ``JOB.ATTEMPT`` of attempts still running though their
    owner died (a job that outlived its worker): their workspaces stay."""
    from stockade.sandbox.cgroup import owner_alive

    base = workspaces_dir(data_dir)
    now = time.time() if now is None else now
    try:
        names = os.listdir(base)
    except OSError:
        return []
    present = set(names)
    swept: list[str] = []
    for name in names:
        path = base / name
        if name.endswith(_KEEP):
            if name[: -len(_KEEP)] not in present:  # its workspace went another way
                with contextlib.suppress(OSError):
                    os.unlink(path)
            continue
        marker = f"{path}{_KEEP}"
        if name + _KEEP in present:
            expiry = _expiry(marker)
            if expiry is None:  # being written, or damaged: give it a minute
                with contextlib.suppress(OSError):
                    expiry = os.stat(marker).st_mtime + 60
            if expiry is None or expiry > now:
                continue
        elif owner_alive(name) or name.split("-", 2)[-1] in spare:
            continue
        _remove(path, git=True)
        swept.append(str(path))
    if swept:
        gitmirror.prune_all(data_dir)
    return swept
