"""The backend registry: name -> class, profiles -> ready sandboxes.

Backends register by name in :data:`BACKENDS` (module and class, imported
on first use, so listing them costs nothing). Each name is also a built-in
profile with default settings (:func:`default_profile`), which is why
``stockade exec --sandbox bwrap -- CMD`` works without a config file.

:func:`prepare_spec` applies what a profile says about the *run* rather
than the sandbox (its environment policy and wall-clock limit) to a
:class:`~stockade.runner.spec.RunSpec`; the CLI and the engine call it
before running a job in a profile's sandbox.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stockade.errors import SetupError
from stockade.sandbox.base import Availability, Sandbox

if TYPE_CHECKING:
    from stockade.runner.spec import RunSpec
    from stockade.spec.sandbox import SandboxProfile

__all__ = [
    "BACKENDS",
    "BackendInfo",
    "backend_class",
    "create",
    "default_profile",
    "describe",
    "prepare_spec",
    "register",
]


@dataclass(frozen=True)
class BackendInfo:
    """Where a backend lives and what it is, for ``stockade sandboxes``."""

    module: str
    cls: str
    summary: str
    isolates: str


BACKENDS: dict[str, BackendInfo] = {
    "local": BackendInfo(
        "stockade.sandbox.local",
        "LocalSandbox",
        "host processes in a process group, with cgroup kill-all and limits",
        "nothing (limits and kill-all only)",
    ),
    "bwrap": BackendInfo(
        "stockade.sandbox.bwrap",
        "BwrapSandbox",
        "bubblewrap per launch; the default for untrusted jobs",
        "files, processes, network, ipc, hostname, user, capabilities, syscalls",
    ),
    "chroot": BackendInfo(
        "stockade.sandbox.chroot",
        "ChrootSandbox",
        "a persistent root per slot, built from a mount table (build farms)",
        "files, processes, network, ipc, hostname, user",
    ),
    "oci": BackendInfo(
        "stockade.sandbox.oci",
        "OciSandbox",
        "a container per launch under runc, from a bundle built from the profile",
        "files, processes, network, ipc, hostname, user, capabilities, syscalls",
    ),
    "mock": BackendInfo(
        "stockade.sandbox.mock",
        "MockSandbox",
        "records calls and plays back results; for tests of the layers above",
        "nothing (runs nothing)",
    ),
}


def register(name: str, info: BackendInfo) -> None:
    """Add (or replace) a backend."""
    BACKENDS[name] = info


def backend_class(name: str) -> type[Sandbox]:
    """The class of backend ``name``; :class:`SetupError` if there is none."""
    info = BACKENDS.get(name)
    if info is None:
        raise SetupError(f"unknown sandbox backend {name!r}; known: {', '.join(BACKENDS)}")
    cls: type[Sandbox] = getattr(importlib.import_module(info.module), info.cls)
    return cls


def default_profile(name: str) -> SandboxProfile:
    """The built-in profile of backend ``name``: its defaults, nothing else."""
    from stockade.spec.sandbox import SandboxProfile

    backend_class(name)
    return SandboxProfile.model_validate({"backend": name})


def create(profile: SandboxProfile, slot: str | None = None) -> Sandbox:
    """A (not yet set up) sandbox for ``profile``, owned by ``slot``."""
    cls = backend_class(profile.backend)
    sandbox: Sandbox = cls(profile=profile, slot=slot)  # type: ignore[call-arg]
    return sandbox


def describe() -> list[tuple[str, BackendInfo, Availability]]:
    """Every backend with whether it is usable on this host (and if not, why)."""
    found = []
    for name, info in BACKENDS.items():
        try:
            usable = backend_class(name).availability()
        except Exception as exc:  # a broken backend is reported, not raised
            usable = Availability(False, f"cannot load: {exc}", "report this as a bug")
        found.append((name, info, usable))
    return found


def prepare_spec(spec: RunSpec, profile: SandboxProfile, *, own: bool = False) -> RunSpec:
    """``spec`` as it must run in ``profile``: with the profile's environment
    policy and its ``limits.wall`` as an upper bound of the timeout.

    Without an ``env_policy`` the job gets the allow-list (``clear``), except
    a local job the user runs as their own command (``own``: ``stockade
    exec``), which inherits the user's environment (less ``STOCKADE_*``)."""
    default = "inherit" if own and profile.backend == "local" else "clear"
    policy = profile.env_policy or default
    changes: dict[str, object] = {"inherit_env": policy == "inherit"}
    wall = profile.limits.wall
    if wall is not None and (spec.timeout is None or spec.timeout > wall):
        changes["timeout"] = wall
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]
