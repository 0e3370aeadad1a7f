"""A task's ``workspace:`` and ``artifacts:``: validated shapes only.

What they do is the runner's (:mod:`stockade.runner.workspace`,
:mod:`stockade.runner.artifacts`); these models check what can be checked
when the file is loaded (a template exists, globs stay inside) and turn into
the plain dicts a :class:`~stockade.runner.spec.RunSpec` carries.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from stockade.runplan.logic import workspace_plan
from stockade.spec.sandbox import resolve_path
from stockade.spec.types import Duration, Size, StrictModel, Text

__all__ = ["DEFAULT_TTL", "ArtifactLimits", "GitSource", "WorkspaceSpec", "artifact_glob"]

#: How long a kept workspace stays before a worker's sweep removes it.
DEFAULT_TTL = 24 * 3600.0


class GitSource(StrictModel):
    """A git repository checked out as a worktree of stockade's local mirror."""

    repo: Text = Field(description="A URL or a local path (relative to the config file).")
    ref: Text = Field(default="HEAD", description="Branch, tag or commit to check out.")

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise ValueError("git repo is empty: give a URL or a path")
        if "://" in value or value.startswith("git@") or ":" in value.split("/", 1)[0]:
            return value
        return str(resolve_path(value, info))

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str) -> str:
        if not value.strip() or value.startswith("-") or any(c.isspace() for c in value):
            raise ValueError(f"git ref {value!r} is not a branch, tag or commit name")
        return value


def _shorthand(value: Any) -> Any:
    """``workspace: empty`` is short for ``workspace: {}``."""
    if value == "empty":
        return {}
    if isinstance(value, str):
        raise ValueError(f"workspace {value!r}: write empty, or a mapping with template or git")
    return value


class WorkspaceSpec(StrictModel):
    """A fresh directory per attempt: empty, a copy of a template, or a git worktree."""

    template: str | None = Field(
        default=None, description="A directory copied into the workspace (relative to the file)."
    )
    git: GitSource | None = Field(default=None, description="A git worktree: repo and ref.")
    keep: Literal["never", "on_failure", "always"] = Field(
        default="never",
        description="Keep the workspace after the attempt: never, on_failure, always.",
    )
    ttl: Duration = Field(
        default=DEFAULT_TTL, description="How long a kept workspace stays (swept by workers)."
    )

    @model_validator(mode="before")
    @classmethod
    def _short(cls, data: Any) -> Any:
        return _shorthand(data)

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = resolve_path(value, info)
        if not path.is_dir():
            raise ValueError(f"workspace template {str(path)!r} is not a directory on this machine")
        return str(path)

    @model_validator(mode="after")
    def _one_source(self) -> WorkspaceSpec:
        if self.template is not None and self.git is not None:
            raise ValueError("a workspace has template or git, not both")
        return self

    def plan(self) -> dict[str, Any]:
        """The runner's plain form (:class:`~stockade.runner.workspace.Plan`)."""
        return workspace_plan(self.model_dump(mode="json"))


class ArtifactLimits(StrictModel):
    """How much a job's artifacts may hold."""

    file: Size = Field(default=100 * 1024 * 1024, description="Largest single artifact.")
    total: Size = Field(default=1024 * 1024 * 1024, description="All of one attempt's artifacts.")
    count: int = Field(default=1000, ge=1, description="Most files one attempt may keep.")


def artifact_glob(value: str) -> str:
    """A glob relative to the workspace, never leading out of it."""
    path = PurePosixPath(value)
    if not value.strip() or path.is_absolute() or ".." in path.parts:
        raise ValueError(
            f"artifact {value!r} must be a glob relative to the workspace, without '..'"
        )
    return value
