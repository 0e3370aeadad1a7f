"""The bwrap backend, for real: what a job can see, write and do."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from stockade.runner.result import Outcome
from stockade.runner.spec import RunSpec
from stockade.sandbox.base import Sandbox
from stockade.sandbox.registry import prepare_spec
from stockade.sandbox.table import SYSTEM_PATHS
from stockade.spec.sandbox import SandboxProfile
from tests.sandbox.helpers import run_in

MakeSandbox = Callable[..., Sandbox]


def test_job_cannot_write_host_usr_or_files_outside_its_binds(
    make_sandbox: MakeSandbox, workspace: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "host-only.txt"
    secret.write_text("untouched\n")
    secret.chmod(0o666)  # writable by anyone on the host: only the sandbox protects it
    sandbox = make_sandbox("bwrap")
    line = (
        "touch /usr/stockade-was-here 2>&1; "
        "echo x >> /etc/hostname 2>&1; "
        f"echo pwned > {secret} 2>&1; "
        f"cat {secret} 2>&1; "
        "mount -o remount,rw /usr 2>&1; touch /usr/stockade-was-here 2>&1; "
        "exit 0"
    )
    result, out, _ = run_in(sandbox, line, workspace)
    assert result.outcome is Outcome.SUCCEEDED
    assert "Read-only file system" in out
    assert "No such file or directory" in out  # the file outside the binds is not there at all
    assert not Path("/usr/stockade-was-here").exists()
    assert secret.read_text() == "untouched\n"


def test_job_sees_only_its_mounts(make_sandbox: MakeSandbox, workspace: Path, outdir: Path) -> None:
    sandbox = make_sandbox(
        "bwrap",
        mounts=[
            {"type": "bind", "source": str(outdir), "target": "/out", "readonly": False},
            {"type": "tmpfs", "target": "/scratch", "size": "1MiB"},
        ],
    )
    line = "ls -A /; echo ---; cut -d' ' -f5 /proc/self/mountinfo"
    result, out, _ = run_in(sandbox, line, workspace)
    assert result.outcome is Outcome.SUCCEEDED
    top, _, table = out.partition("---\n")
    system = {p.lstrip("/") for p in SYSTEM_PATHS if os.path.lexists(p)}
    assert set(top.split()) == system | {"dev", "proc", "tmp", "out", "scratch"}
    targets = set(table.split())
    assert {"/", "/usr", "/etc", "/out", "/scratch", "/tmp", "/proc", "/dev"} <= targets
    assert str(workspace) in targets
    assert not [t for t in targets if t.startswith(("/home", "/root", "/work", "/var"))]


def test_job_runs_unprivileged_with_no_capabilities_and_the_filter(
    make_sandbox: MakeSandbox, workspace: Path
) -> None:
    sandbox = make_sandbox("bwrap")
    line = "id -u; id -g; grep -E '^(CapEff|CapPrm|NoNewPrivs|Seccomp):' /proc/self/status"
    _, out, _ = run_in(sandbox, line, workspace)
    lines = out.split("\n")
    assert lines[:2] == ["65534", "65534"]
    assert "CapEff:\t0000000000000000" in out
    assert "CapPrm:\t0000000000000000" in out
    assert "NoNewPrivs:\t1" in out
    assert "Seccomp:\t2" in out


def test_seccomp_filter_refuses_new_user_namespaces_and_can_be_turned_off(
    make_sandbox: MakeSandbox, workspace: Path
) -> None:
    line = "unshare --user true 2>&1; echo rc=$?"
    _, out, _ = run_in(make_sandbox("bwrap"), line, workspace)
    assert "Operation not permitted" in out and "rc=1" in out
    _, out, _ = run_in(make_sandbox("bwrap", seccomp=False), line, workspace)
    assert "rc=0" in out


def test_network_is_cut_unless_host_is_asked(make_sandbox: MakeSandbox, workspace: Path) -> None:
    line = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '"
    _, none, _ = run_in(make_sandbox("bwrap"), line, workspace)
    assert none.split() == ["lo"]
    _, host, _ = run_in(make_sandbox("bwrap", network="host"), line, workspace)
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    host_ifaces = sorted(line.split(":")[0].strip() for line in lines)
    assert host.split() == host_ifaces


def test_environment_is_only_the_jobs(
    make_sandbox: MakeSandbox, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST_ONLY_SECRET", "do-not-leak")
    monkeypatch.setenv("PASSED_THROUGH", "yes")
    keys = {"env": {"FROM_PROFILE": "1"}, "pass_env": ["PASSED_THROUGH"]}
    sandbox = make_sandbox("bwrap", **keys)
    # What the CLI and the engine do with a profile's run settings: clear by default.
    spec = prepare_spec(RunSpec(shell="env"), SandboxProfile(backend="bwrap", **keys))
    assert spec.inherit_env is False
    _, out, _ = run_in(sandbox, "env", workspace, env={"TASK_VAR": "t"})
    names = {line.split("=", 1)[0] for line in out.splitlines()}
    assert "HOST_ONLY_SECRET" not in names
    assert {"FROM_PROFILE", "PASSED_THROUGH", "TASK_VAR", "STOCKADE_JOB_ID", "PATH"} <= names


def test_tmpfs_size_and_workdir(make_sandbox: MakeSandbox, workspace: Path) -> None:
    sandbox = make_sandbox(
        "bwrap", workdir="/build", mounts=[{"type": "tmpfs", "target": "/build", "size": "1MiB"}]
    )
    line = "pwd; dd if=/dev/zero of=big bs=1M count=4 2>&1 | grep -o 'No space left on device'"
    _, out, _ = run_in(sandbox, line, workspace)
    assert out.startswith("/build\n")
    assert "No space left on device" in out


def test_signal_exit_status_is_reported_as_a_signal(
    make_sandbox: MakeSandbox, workspace: Path
) -> None:
    result, _, _ = run_in(make_sandbox("bwrap"), "kill -KILL $$", workspace)
    assert (result.exit_code, result.signal) == (None, 9)


def test_a_source_that_vanished_is_a_launch_failure_with_the_reason(
    make_sandbox: MakeSandbox, workspace: Path, tmp_path: Path
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    sandbox = make_sandbox("bwrap", mounts=[{"type": "bind", "source": str(gone), "target": "/g"}])
    gone.rmdir()
    result, _, err = run_in(sandbox, "true", workspace)
    assert result.outcome is Outcome.FAILED
    assert "gone" in err and "No such file or directory" in err
