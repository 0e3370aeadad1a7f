"""Sandbox profiles: which backend runs a task, with what mounts and limits.

These models only describe and validate a profile; what each field does is
up to the backend in :mod:`stockade.sandbox`. Validation checks what can be
checked on the machine that loads the file: a bind mount's source exists,
targets are absolute, limits are positive.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import (
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from stockade.spec.types import Duration, EnvMap, Size, StrictModel, Text

__all__ = [
    "BACKENDS",
    "BASE_DIR_CONTEXT",
    "Backend",
    "Limits",
    "Mount",
    "SandboxProfile",
    "resolve_path",
]

Backend = Literal["local", "bwrap", "chroot", "oci", "mock"]
BACKENDS: tuple[str, ...] = ("local", "bwrap", "chroot", "oci", "mock")

BASE_DIR_CONTEXT = "stockade_base_dir"
"""Validation-context key: the directory relative paths in the file are
relative to (the config file's directory). Without it, the current
directory is used."""


def resolve_path(text: str, info: ValidationInfo) -> Path:
    """Make a path from the file absolute: ``~`` expanded, relative paths
    taken from the config file's directory (not wherever stockade runs)."""
    path = Path(os.path.expanduser(text))
    if not path.is_absolute():
        context = info.context if isinstance(info.context, dict) else {}
        base = context.get(BASE_DIR_CONTEXT)
        path = Path(base or os.getcwd()) / path
    return Path(os.path.normpath(path))


class Mount(StrictModel):
    """One entry of a sandbox's mount table.

    ``bind`` makes a host path (``source``) visible at ``target``; it is
    read-only unless ``readonly: false``. ``tmpfs`` mounts an empty,
    writable memory file system at ``target``, at most ``size`` bytes.
    """

    type: Literal["bind", "tmpfs"] = Field(description="bind (a host path) or tmpfs (memory).")
    source: str | None = Field(
        default=None,
        description="Host path for a bind mount; relative to the config file. Must exist.",
    )
    target: str = Field(description="Absolute path inside the sandbox.")
    readonly: bool = Field(
        default=False, description="Mount read-only (default: true for bind, false for tmpfs)."
    )
    size: Size | None = Field(default=None, description="tmpfs only: its maximum size.")

    @model_validator(mode="before")
    @classmethod
    def _default_readonly(cls, data: Any) -> Any:
        if isinstance(data, dict) and "readonly" not in data:
            return {**data, "readonly": data.get("type") == "bind"}
        return data

    @field_validator("target")
    @classmethod
    def _absolute_target(cls, value: str) -> str:
        path = PurePosixPath(value)
        if not path.is_absolute():
            raise ValueError(f"mount target {value!r} must be an absolute path like /data")
        if ".." in path.parts:
            raise ValueError(f"mount target {value!r} may not contain '..'")
        return str(path)

    @field_validator("source")
    @classmethod
    def _existing_source(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or info.data.get("type") != "bind":
            return value
        path = resolve_path(value, info)
        if not path.exists():
            raise ValueError(f"bind mount source {str(path)!r} does not exist on this machine")
        return str(path)

    @model_validator(mode="after")
    def _shape(self) -> Mount:
        if self.type == "bind" and self.source is None:
            raise ValueError("a bind mount needs a source: the host path to mount")
        if self.type == "tmpfs" and self.source is not None:
            raise ValueError("a tmpfs mount has no source; remove it or use type: bind")
        if self.type == "bind" and self.size is not None:
            raise ValueError("size applies only to tmpfs mounts")
        return self


class Limits(StrictModel):
    """Resource limits for every process of a job; unset means unlimited."""

    memory: Size | None = Field(default=None, description="Memory for the whole job.")
    pids: PositiveInt | None = Field(default=None, description="Number of processes/threads.")
    cpu: PositiveFloat | None = Field(default=None, description="CPU time share, in cores.")
    wall: Duration | None = Field(default=None, description="Wall-clock time per attempt.")
    open_files: PositiveInt | None = Field(default=None, description="Open files per process.")
    file_size: Size | None = Field(default=None, description="Largest file a process may write.")


class SandboxProfile(StrictModel):
    """A named sandbox setup that tasks refer to with ``sandbox: NAME``."""

    backend: Backend = Field(description="local, bwrap, chroot, oci or mock.")
    mounts: list[Mount] = Field(default_factory=list, description="The mount table, in order.")
    network: Literal["none", "host"] | None = Field(
        default=None, description="none (no network) or host; unset: the backend's default."
    )
    workdir: str | None = Field(default=None, description="Working directory inside the sandbox.")
    user: Text | None = Field(default=None, description="User to run as: a name or uid[:gid].")
    env: EnvMap = Field(default_factory=dict, description="Environment for every job in it.")
    limits: Limits = Field(default_factory=Limits, description="Resource limits.")

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("user is empty: give a user name or uid[:gid]")
        return value
