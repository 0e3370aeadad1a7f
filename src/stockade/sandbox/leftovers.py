"""Find what a stockade process left behind: mounts, cgroups, containers.

Every kernel object stockade makes is named after the process that made it
(``<pid>-<slot>`` directories, ``stockade-<pid>-…`` containers), so a
leftover can be attributed without bookkeeping. The test suite checks this
at its end; an operator can check a dead worker's pid the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

from stockade.sandbox.cgroup import cgroup2_root
from stockade.sandbox.chroot import BASE_DIR
from stockade.sandbox.mounts import mountinfo
from stockade.sandbox.oci import BUNDLE_DIR, STATE_DIR

__all__ = ["leftovers"]

_RUN_DIR = "/run/stockade"


def _cgroup_dirs() -> list[Path]:
    """The directory of this process's cgroup in every hierarchy (v1 and v2)."""
    mounts: dict[str, Path] = {}
    v2 = cgroup2_root()
    for point in mountinfo():
        if point.fstype == "cgroup":
            for opt in point.super_options.split(","):
                mounts.setdefault(opt, Path(point.target))
    dirs = []
    with open("/proc/self/cgroup", encoding="ascii") as fh:
        for line in fh:
            _, names, path = line.rstrip("\n").split(":", 2)
            if not names and v2 is not None:
                dirs += [v2, v2 / path.lstrip("/")]
            for name in names.split(","):
                if name in mounts:
                    dirs.append(mounts[name] / path.lstrip("/"))
    return list(dict.fromkeys(dirs))


def leftovers(pid: int | None = None) -> list[str]:
    """Mounts, cgroup directories, containers and bundles of stockade process ``pid``
    (default: this one) that still exist."""
    pid = pid or os.getpid()
    mine, container = f"{pid}-", f"stockade-{pid}-"
    found = [
        f"mount {m.target}"
        for m in mountinfo()
        if m.target.startswith(_RUN_DIR + "/") and f"/{mine}" in m.target
    ]
    for base in _cgroup_dirs():
        for parent, prefix in ((base / "stockade", mine), (base, container)):
            try:
                names = os.listdir(parent)
            except OSError:
                continue
            found += [f"cgroup {parent / n}" for n in names if n.startswith(prefix)]
    for directory, prefix in ((STATE_DIR, container), (BUNDLE_DIR, mine), (BASE_DIR, mine)):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        found += [f"{directory}/{n}" for n in names if n.startswith(prefix)]
    return sorted(set(found))
