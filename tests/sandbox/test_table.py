"""Mount-table planning, identities and mountinfo parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stockade.errors import LaunchError, SetupError
from stockade.sandbox import mounts
from stockade.sandbox.base import LaunchRequest
from stockade.sandbox.identity import NOBODY, Identity, resolve
from stockade.sandbox.table import DEFAULT_TMP_SIZE, Entry, launch_binds, plan
from stockade.spec.sandbox import SandboxProfile
from tests.sandbox.conftest import require


def _request(workspace: str, *runtime: str) -> LaunchRequest:
    return LaunchRequest(["true"], {}, workspace, workspace, "m", runtime_dirs=list(runtime))


def test_plan_orders_parents_first_and_lets_the_profile_override_the_system(
    tmp_path: Path,
) -> None:
    profile = SandboxProfile.model_validate(
        {
            "backend": "bwrap",
            "mounts": [
                {"type": "bind", "source": str(tmp_path), "target": "/srv/data/deep"},
                {"type": "tmpfs", "target": "/srv", "size": "1MiB"},
                {"type": "bind", "source": str(tmp_path), "target": "/etc"},
            ],
        }
    )
    entries = plan(profile)
    targets = [e.target for e in entries]
    assert targets.index("/srv") < targets.index("/srv/data/deep")
    assert [e for e in entries if e.target == "/etc"] == [Entry("bind", "/etc", str(tmp_path))]
    assert Entry("tmpfs", "/tmp", readonly=False, size=DEFAULT_TMP_SIZE) in entries
    if os.path.islink("/bin"):
        assert Entry("symlink", "/bin", os.readlink("/bin")) in entries
    bare = plan(SandboxProfile(backend="bwrap", system=False))
    assert [e.target for e in bare] == ["/tmp"]


def test_launch_binds_cover_nested_paths_once_and_refuse_the_host() -> None:
    binds = launch_binds(_request("/work/p", "/work/p/.stockade/run/j-1", "/var/x"))
    assert [b.target for b in binds] == ["/work/p", "/var/x"]
    assert all(not b.readonly and b.source == b.target for b in binds)
    for bad in ("/", "/usr", "/etc/", "/proc"):
        with pytest.raises(LaunchError, match="read-write as its workspace"):
            launch_binds(_request(bad))


def test_a_hidden_dir_is_covered_wherever_a_bind_shows_it() -> None:
    request = _request("/work/p", "/work/p/.stockade/run/j-1", "/var/x")
    request.hidden_dirs = ["/work/p/.stockade"]
    mount = Entry("bind", "/data", "/work", readonly=True)  # a profile mount of /work at /data
    binds = launch_binds(request, [mount])
    covers = [(b.target, oct(b.mode)) for b in binds if b.kind == "tmpfs"]
    assert sorted(covers) == [("/data/p/.stockade", "0o711"), ("/work/p/.stockade", "0o711")]
    # The runtime directory inside the cover is bound again after it.
    targets = [b.target for b in binds]
    assert targets.index("/work/p/.stockade/run/j-1") > targets.index("/work/p/.stockade")
    request.hidden_dirs = ["/elsewhere/.stockade"]  # shown by no bind: nothing to cover
    assert [b.kind for b in launch_binds(request, [mount])] == ["bind", "bind"]


def test_identities() -> None:
    me = Identity(os.geteuid(), os.getegid())
    assert resolve(None) == (Identity(NOBODY, NOBODY) if me.uid == 0 else me)
    assert resolve("1000") == Identity(1000, 1000)
    assert resolve("1000:5") == Identity(1000, 5)
    assert resolve("root") == Identity(0, 0)
    assert resolve("nobody:nogroup").uid == NOBODY
    with pytest.raises(SetupError, match="user 'no-such-user' does not exist"):
        resolve("no-such-user")


def test_mountinfo_unescapes_paths_with_spaces(tmp_path: Path) -> None:
    require("chroot")  # needs root to mount
    odd = tmp_path / "with space\tand tab"
    odd.mkdir()
    mounts.tmpfs(str(odd), 1 << 20)
    try:
        found = mounts.mounts_under(str(odd))
        assert [(m.target, m.fstype) for m in found] == [(str(odd), "tmpfs")]
    finally:
        mounts.unmount_tree(str(odd))
    assert not mounts.mounts_under(str(odd))
