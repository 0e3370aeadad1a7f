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

from stockade.spec.types import Duration, EnvMap, EnvName, Size, StrictModel, Text

__all__ = [
    "BACKENDS",
    "BASE_DIR_CONTEXT",
    "ISOLATING",
    "RESERVED_TARGETS",
    "Backend",
    "Limits",
    "Mount",
    "SandboxProfile",
    "backend_problems",
    "resolve_path",
]

Backend = Literal["local", "bwrap", "chroot", "oci", "mock"]
BACKENDS: tuple[str, ...] = ("local", "bwrap", "chroot", "oci", "mock")

#: Paths every isolating backend provides itself; a profile may not mount over them.
RESERVED_TARGETS = ("/", "/proc", "/dev")
#: Backends that build a mount table (the others run on the host's file system).
ISOLATING = ("bwrap", "chroot", "oci")

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
    system: bool = Field(
        default=True,
        description="Bind the host's system directories read-only "
        "(/usr, /bin, /sbin, /lib*, /etc); false: only the mounts listed.",
    )
    network: Literal["none", "host"] | None = Field(
        default=None, description="none (no network) or host; unset: the backend's default."
    )
    workdir: str | None = Field(default=None, description="Working directory inside the sandbox.")
    user: Text | None = Field(default=None, description="User to run as: a name or uid[:gid].")
    env: EnvMap = Field(default_factory=dict, description="Environment for every job in it.")
    env_policy: Literal["clear", "inherit"] | None = Field(
        default=None,
        description="clear: jobs see only their own variables (task env, secrets, input, "
        "the STOCKADE_* job contract, PATH, HOME, LANG) plus env and pass_env; inherit: "
        "stockade's environment too, less its own STOCKADE_* variables. Unset: clear, "
        "except a local job run by stockade exec, which inherits.",
    )
    pass_env: list[EnvName] = Field(
        default_factory=list,
        description="Variables passed through from stockade's environment (never STOCKADE_*).",
    )
    seccomp: bool | None = Field(
        default=None,
        description="Install stockade's seccomp filter (no new user namespaces, no kernel "
        "keyrings, no perf/bpf/userfaultfd). Unset: on where the backend can load one.",
    )
    template: str | None = Field(
        default=None, description="chroot only: a directory copied into the root at setup."
    )
    limits: Limits = Field(default_factory=Limits, description="Resource limits.")

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("user is empty: give a user name or uid[:gid]")
        return value

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, value: str | None) -> str | None:
        if value is not None and not PurePosixPath(value).is_absolute():
            raise ValueError(f"workdir {value!r} must be an absolute path inside the sandbox")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.startswith("STOCKADE_"):
                raise ValueError(f"{name} is set by stockade for every job; choose another name")
        return value

    @field_validator("pass_env")
    @classmethod
    def _pass_env(cls, value: list[str]) -> list[str]:
        for name in value:
            if name.startswith("STOCKADE_"):
                raise ValueError(
                    f"pass_env cannot pass {name}: stockade's own variables never reach a job; "
                    "pass the value under another name with env or a secret"
                )
        return value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = resolve_path(value, info)
        if not path.is_dir():
            raise ValueError(f"template {str(path)!r} is not a directory on this machine")
        return str(path)

    @model_validator(mode="after")
    def _fits_backend(self) -> SandboxProfile:
        problems = backend_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def adjusted(self, **changes: Any) -> SandboxProfile:
        """A copy with command-line adjustments, validated again.

        ``changes`` may hold ``memory``, ``pids``, ``cpu`` (limits),
        ``network`` and ``mounts`` (appended); ``None`` values are ignored.
        """
        data = self.model_dump()
        for key in ("memory", "pids", "cpu"):
            if changes.get(key) is not None:
                data["limits"][key] = changes[key]
        if changes.get("network") is not None:
            data["network"] = changes["network"]
        data["mounts"] += [m.model_dump() for m in changes.get("mounts") or []]
        return SandboxProfile.model_validate(data)


def backend_problems(profile: SandboxProfile) -> list[str]:
    """What ``profile`` asks that its backend cannot do, one message each."""
    problems = []
    backend = profile.backend
    if backend == "local":
        if profile.mounts:
            problems.append(
                "the local backend has no mount table: remove mounts, or use backend bwrap"
            )
        if profile.network == "none":
            problems.append("the local backend cannot cut the network: use backend bwrap")
        if profile.user is not None:
            problems.append("the local backend runs jobs as stockade's user: use backend bwrap")
        if profile.seccomp:
            problems.append("the local backend cannot load a seccomp filter: use backend bwrap")
    if backend == "chroot" and profile.seccomp:
        problems.append("the chroot backend cannot load a seccomp filter: use backend bwrap or oci")
    if profile.template is not None and backend != "chroot":
        problems.append("template applies only to the chroot backend")
    if backend in ISOLATING:
        for mount in profile.mounts:
            if mount.target in RESERVED_TARGETS:
                problems.append(
                    f"mount target {mount.target} is provided by the sandbox itself; "
                    "mount somewhere else"
                )
    return problems
