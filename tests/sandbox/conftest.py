"""Fixtures for the sandbox tests: real backends, real mounts, real cgroups.

The tests run as root and drive bubblewrap, util-linux and runc for real;
``make test`` installs them (``make sysdeps``). A test whose backend cannot
run here is skipped with the reason and the fix ``stockade sandboxes`` gives.

At the end of the session nothing of this process may be left: no mount
under /run/stockade, no cgroup directory, no runc container or state, no
bundle (checked by :func:`stockade.sandbox.leftovers.leftovers`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stockade.sandbox.base import Sandbox
from stockade.sandbox.identity import NOBODY
from stockade.sandbox.leftovers import leftovers
from stockade.sandbox.registry import backend_class, create
from stockade.spec.sandbox import SandboxProfile

REAL_BACKENDS = ("local", "bwrap", "chroot", "oci")
_slots = itertools.count(1)


def require(backend: str) -> None:
    """Skip the calling test unless ``backend`` can run on this host."""
    usable = backend_class(backend).availability()
    if not usable.usable:
        pytest.skip(f"{backend} backend not usable here: {usable.reason} (fix: {usable.fix})")


@pytest.fixture(scope="session", autouse=True)
def _no_sandbox_leftovers() -> Iterator[None]:
    yield
    left = leftovers()
    assert not left, f"the sandbox tests left behind: {left}"


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., Sandbox]]:
    """``make(backend, **profile_keys)``: a set-up sandbox, cleaned up after the test."""
    made: list[Sandbox] = []

    def make(backend: str, **profile: Any) -> Sandbox:
        require(backend)
        spec = SandboxProfile.model_validate({"backend": backend, **profile})
        sandbox = create(spec, slot=f"t{next(_slots)}")
        made.append(sandbox)
        sandbox.setup()
        return sandbox

    yield make
    for sandbox in reversed(made):
        sandbox.cleanup()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The job's workspace: a plain directory owned by root (jobs run as nobody)."""
    path = tmp_path / "ws"
    path.mkdir()
    return path


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    """A host directory the unprivileged job user owns, for read-write binds."""
    path = tmp_path / "out"
    path.mkdir()
    os.chown(path, NOBODY, NOBODY)
    return path
