"""Backend registry, built-in profiles, profile validation, run settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from stockade.errors import SetupError
from stockade.runner.spec import RunSpec
from stockade.sandbox import registry
from stockade.sandbox.bwrap import BwrapSandbox
from stockade.sandbox.chroot import ChrootSandbox
from stockade.sandbox.local import LocalSandbox
from stockade.sandbox.mock import MockSandbox
from stockade.sandbox.oci import OciSandbox
from stockade.spec.sandbox import BACKENDS, SandboxProfile


def test_every_spec_backend_is_registered_with_a_default_profile() -> None:
    assert tuple(registry.BACKENDS) == BACKENDS
    classes = {
        "local": LocalSandbox,
        "bwrap": BwrapSandbox,
        "chroot": ChrootSandbox,
        "oci": OciSandbox,
        "mock": MockSandbox,
    }
    for name, cls in classes.items():
        profile = registry.default_profile(name)
        assert profile.backend == name
        sandbox = registry.create(profile, slot="s1")
        assert type(sandbox) is cls and sandbox.name == name
        assert sandbox.slot == "s1"  # type: ignore[attr-defined]


def test_unknown_backend() -> None:
    with pytest.raises(SetupError, match="unknown sandbox backend 'docker'; known: local"):
        registry.backend_class("docker")


def test_describe_says_why_and_how_to_fix() -> None:
    rows = {name: usable for name, _, usable in registry.describe()}
    assert set(rows) == set(BACKENDS)
    assert rows["local"].usable and rows["mock"].usable
    for usable in rows.values():
        assert usable.usable or (usable.reason and usable.fix)


def test_prepare_spec_applies_env_policy_and_wall_limit() -> None:
    spec = RunSpec(argv=["x"], timeout=600)
    bwrap = registry.prepare_spec(spec, SandboxProfile(backend="bwrap", limits={"wall": "1m"}))
    assert (bwrap.inherit_env, bwrap.timeout) == (False, 60)
    local = registry.prepare_spec(spec, SandboxProfile(backend="local"))
    assert (local.inherit_env, local.timeout) == (False, 600)  # a worker's or run's job
    own = registry.prepare_spec(spec, SandboxProfile(backend="local"), own=True)
    assert own.inherit_env is True  # stockade exec: the user's own command
    assert (
        registry.prepare_spec(spec, SandboxProfile(backend="bwrap"), own=True).inherit_env is False
    )
    forced = registry.prepare_spec(spec, SandboxProfile(backend="bwrap", env_policy="inherit"))
    assert forced.inherit_env is True


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"backend": "local", "network": "none"}, "local backend cannot cut the network"),
        ({"backend": "local", "mounts": [{"type": "tmpfs", "target": "/x"}]}, "no mount table"),
        ({"backend": "local", "user": "nobody"}, "runs jobs as stockade's user"),
        ({"backend": "chroot", "seccomp": True}, "chroot backend cannot load a seccomp"),
        ({"backend": "bwrap", "template": "/usr"}, "template applies only to the chroot"),
        ({"backend": "bwrap", "mounts": [{"type": "tmpfs", "target": "/proc"}]}, "provided by"),
        ({"backend": "bwrap", "env": {"STOCKADE_JOB_ID": "x"}}, "set by stockade"),
        ({"backend": "bwrap", "workdir": "rel"}, "must be an absolute path"),
        ({"backend": "chroot", "template": "/no/such/dir"}, "is not a directory"),
    ],
)
def test_profile_problems(keys: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SandboxProfile.model_validate(keys)


def test_adjusted_profile_is_validated_again(tmp_path: Path) -> None:
    base = SandboxProfile(backend="bwrap", limits={"memory": "1GiB"})
    bind = {"type": "bind", "source": str(tmp_path), "target": "/data", "readonly": False}
    from stockade.spec.sandbox import Mount

    changed = base.adjusted(pids=10, network="host", mounts=[Mount.model_validate(bind)])
    assert (changed.limits.memory, changed.limits.pids, changed.network) == (1 << 30, 10, "host")
    assert changed.mounts[0].target == "/data" and not changed.mounts[0].readonly
    assert base.limits.pids is None  # the original is untouched
    with pytest.raises(ValidationError):
        SandboxProfile(backend="local").adjusted(network="none")
