"""The ``config.json`` of a stockade OCI bundle (runtime-spec 1.0).

The rootfs is an empty, read-only directory; everything the job sees is a
mount from the profile's table (:mod:`stockade.sandbox.table`), plus
``/proc``, a tmpfs ``/dev`` (the runtime adds the standard device nodes),
``/dev/pts`` and ``/dev/shm``. Symlinks of the table are made in the rootfs
directory itself by the backend. The process has no capabilities, runs as
the profile's user with ``noNewPrivileges``, and its limits are the
runtime's ``linux.resources`` and ``process.rlimits``.
"""

from __future__ import annotations

from typing import Any

from stockade.sandbox.identity import Identity
from stockade.sandbox.limits import CPU_PERIOD_US, ResourceLimits
from stockade.sandbox.table import Entry

__all__ = ["HOSTNAME", "config"]

HOSTNAME = "stockade"
_SAFE = ["nosuid", "nodev"]
_MASKED = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware",
]  # fmt: skip
_READONLY = [
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
]  # fmt: skip
_BASE_MOUNTS: list[dict[str, Any]] = [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {
        "destination": "/dev",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
        "destination": "/dev/pts",
        "type": "devpts",
        "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
    },
    {
        "destination": "/dev/shm",
        "type": "tmpfs",
        "source": "shm",
        "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
]


def _mount(entry: Entry) -> dict[str, Any]:
    mode = "ro" if entry.readonly else "rw"
    if entry.kind == "bind":
        return {
            "destination": entry.target,
            "type": "bind",
            "source": entry.source,
            "options": ["bind", mode, *_SAFE],
        }
    options = [*_SAFE, f"mode={entry.mode:o}", mode]
    if entry.size:
        options.append(f"size={entry.size}")
    return {"destination": entry.target, "type": "tmpfs", "source": "tmpfs", "options": options}


def _resources(limits: ResourceLimits) -> dict[str, Any]:
    res: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if limits.memory is not None:
        # swap is memory+swap: the same value means no swap at all.
        res["memory"] = {"limit": limits.memory, "swap": limits.memory}
    if limits.pids is not None:
        res["pids"] = {"limit": limits.pids}
    if limits.cpu is not None:
        res["cpu"] = {
            "quota": max(1000, round(limits.cpu * CPU_PERIOD_US)),
            "period": CPU_PERIOD_US,
        }
    return res


def _rlimits(limits: ResourceLimits) -> list[dict[str, Any]]:
    found = []
    if limits.open_files is not None:
        found.append(
            {"type": "RLIMIT_NOFILE", "hard": limits.open_files, "soft": limits.open_files}
        )
    if limits.file_size is not None:
        found.append({"type": "RLIMIT_FSIZE", "hard": limits.file_size, "soft": limits.file_size})
    return found


def config(
    *,
    args: list[str],
    env: dict[str, str],
    cwd: str,
    identity: Identity,
    entries: list[Entry],
    limits: ResourceLimits,
    network: bool,
    cgroups_path: str,
    seccomp: dict[str, Any] | None,
) -> dict[str, Any]:
    """The whole ``config.json`` for one launch (see the module docstring)."""
    namespaces = [{"type": name} for name in ("pid", "ipc", "uts", "mount")]
    if not network:
        namespaces.append({"type": "network"})
    no_caps: dict[str, list[str]] = {
        name: [] for name in ("bounding", "effective", "inheritable", "permitted", "ambient")
    }
    process: dict[str, Any] = {
        "terminal": False,
        "user": {"uid": identity.uid, "gid": identity.gid, "additionalGids": []},
        "args": args,
        "env": [f"{key}={value}" for key, value in env.items()],
        "cwd": cwd,
        "capabilities": no_caps,
        "noNewPrivileges": True,
    }
    rlimits = _rlimits(limits)
    if rlimits:
        process["rlimits"] = rlimits
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "cgroupsPath": cgroups_path,
        "resources": _resources(limits),
        "maskedPaths": _MASKED,
        "readonlyPaths": _READONLY,
    }
    if seccomp is not None:
        linux["seccomp"] = seccomp
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": True},
        "hostname": HOSTNAME,
        "mounts": _BASE_MOUNTS + [_mount(e) for e in entries if e.kind != "symlink"],
        "linux": linux,
    }
