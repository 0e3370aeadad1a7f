"""A root-run sandbox's job (``nobody``) can write its workspace and its
writable binds, and the host directories are left as they were."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from stockade.runner.attempt import run
from stockade.runner.events import ListSink
from stockade.runner.result import Outcome
from stockade.runner.spec import RunSpec
from stockade.sandbox.base import Sandbox
from tests.sandbox.helpers import run_in
from tests.sandbox.test_cli import stockade

MakeSandbox = Callable[..., Sandbox]


def _root_dir(path: Path) -> Path:
    path.mkdir()
    os.chmod(path, 0o755)  # root's, not writable by the job's user
    return path


@pytest.mark.parametrize("backend", ["bwrap", "chroot", "oci"])
def test_job_writes_a_root_owned_workspace_and_writable_bind(
    backend: str, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("only a root-run stockade switches the job to another user")
    workspace, out = _root_dir(tmp_path / "ws"), _root_dir(tmp_path / "out")
    sandbox = make_sandbox(
        backend, mounts=[{"type": "bind", "source": str(out), "target": "/out", "readonly": False}]
    )
    result, _, err = run_in(sandbox, "id -u; echo a > ./a && echo b > /out/b", workspace)
    assert result.outcome is Outcome.SUCCEEDED, err
    assert (workspace / "a").read_text() == "a\n"
    assert (out / "b").read_text() == "b\n"
    assert (workspace / "a").stat().st_uid != 0  # written by the job's own user
    sandbox.cleanup()
    for path in (workspace, out):  # the lent access is taken back
        assert os.listxattr(path) == []
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
        assert path.stat().st_uid == 0


def test_the_docs_bind_example_writes_as_root(tmp_path: Path) -> None:
    """docs/sandboxes.md: ``stockade exec --sandbox bwrap --bind ./out:/out``."""
    from tests.sandbox.conftest import require

    require("bwrap")
    if os.geteuid() != 0:
        pytest.skip("only a root-run stockade switches the job to another user")
    _root_dir(tmp_path / "out")
    proc = stockade(
        "exec", "--sandbox", "bwrap", "--bind", "./out:/out", "--shell",
        "echo hi > /out/x && echo ok > ./y", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "x").read_text() == "hi\n"
    assert (tmp_path / "y").read_text() == "ok\n"
    assert os.listxattr(tmp_path) == []


@pytest.mark.parametrize("backend", ["bwrap", "chroot", "oci"])
def test_a_made_workspace_is_the_jobs_own(
    backend: str, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    """A task's ``workspace:`` is given to the job's user, under the hidden data directory."""
    template = tmp_path / "tpl"
    template.mkdir()
    (template / "in.txt").write_text("from the template\n")
    sandbox = make_sandbox(backend)
    line = 'cat in.txt; echo out > out.txt; stat -c %u . ; test "$PWD" = "$STOCKADE_WORKSPACE"'
    sink = ListSink()
    spec = RunSpec(
        shell=line, workspace={"template": str(template), "keep": "always"},
        data_dir=str(tmp_path / "data"),
    )  # fmt: skip
    result = asyncio.run(run(spec, sinks=[sink], sandbox=sandbox))
    out, err = sink.text("stdout"), sink.text("stderr")
    assert result.outcome is Outcome.SUCCEEDED, err
    lines = out.splitlines()
    assert lines[0] == "from the template"
    assert lines[1] != "0"  # owned by the job's user, not root
    (made,) = [p for p in (tmp_path / "data" / "workspaces").iterdir() if p.is_dir()]
    assert (made / "out.txt").read_text() == "out\n"


def test_lending_is_counted_per_lease_and_restored_by_the_last(tmp_path: Path) -> None:
    """Two slots lend one directory: it stays lent until both let go; a slot
    that asks again at every launch holds it once."""
    if os.geteuid() != 0:
        pytest.skip("only root lends directories to another user")
    from stockade.sandbox.acl import Lease, writable_by

    target = _root_dir(tmp_path / "shared")
    first, second = Lease(65534, 65534), Lease(65534, 65534)
    for _ in range(3):
        assert first.add(str(target))
    assert second.add(str(target))
    first.release()
    assert os.listxattr(target) != []  # the second slot still holds it
    second.release()
    assert os.listxattr(target) == []
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert not writable_by(str(target), 65534, 65534)
