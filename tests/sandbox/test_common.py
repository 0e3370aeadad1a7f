"""What every real backend guarantees, run for real in each of them.

Limits (memory -> ``oom``, pids -> a contained fork bomb), guaranteed kill
(a setsid daemon dies with its job), exact exit codes, the output protocol
file writable by the (unprivileged) job, and a cleanup after a failure that
leaves nothing behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stockade.runner.result import Outcome
from stockade.sandbox.base import Sandbox
from stockade.sandbox.leftovers import leftovers
from stockade.sandbox.registry import create
from stockade.spec.sandbox import SandboxProfile
from tests.sandbox.conftest import REAL_BACKENDS, require
from tests.sandbox.helpers import run_in

MakeSandbox = Callable[..., Sandbox]
backends = pytest.mark.parametrize("backend", REAL_BACKENDS)


@backends
def test_exit_code_output_file_and_stdout(
    backend: str, make_sandbox: MakeSandbox, workspace: Path
) -> None:
    sandbox = make_sandbox(backend)
    line = 'echo hello; echo "answer=42" >> "$STOCKADE_OUTPUT"; echo oops >&2; exit 3'
    result, out, err = run_in(sandbox, line, workspace)
    assert result.exit_code == 3
    assert result.outcome is Outcome.FAILED
    assert out == "hello\n"
    assert "oops" in err
    assert result.outputs["answer"] == "42"


@backends
def test_memory_hog_is_reported_oom(
    backend: str, make_sandbox: MakeSandbox, workspace: Path
) -> None:
    sandbox = make_sandbox(backend, limits={"memory": "32MiB"})
    # dd holds one 256 MiB buffer: far over the limit, killed by the kernel's OOM killer.
    result, _, _ = run_in(sandbox, "dd if=/dev/zero of=/dev/null bs=256M count=1", workspace)
    assert result.reason == "oom", result
    assert result.outcome is Outcome.FAILED
    # The same slot runs the next job normally: the counter is per launch.
    ok, out, _ = run_in(sandbox, "echo fine", workspace)
    assert ok.outcome is Outcome.SUCCEEDED and ok.reason == "succeeded" and out == "fine\n"


@backends
def test_fork_bomb_is_contained_by_pids_limit(
    backend: str, make_sandbox: MakeSandbox, workspace: Path
) -> None:
    sandbox = make_sandbox(backend, limits={"pids": 24})
    # `exec sleep`: the main shell must not need a fork of its own to wait,
    # or it fails (instead of timing out) when the bomb holds every pid.
    bomb = "bomb() { bomb | bomb & }; bomb; exec sleep 30"
    started = time.monotonic()
    result, _, err = run_in(sandbox, bomb, workspace, timeout=1.5, kill_grace=0.2)
    assert result.outcome is Outcome.TIMED_OUT
    assert "Cannot fork" in err  # the shell hit the limit: forks were refused
    assert time.monotonic() - started < 10, "the host struggled to stop a contained fork bomb"
    # The host survived and the slot still works.
    after, out, _ = run_in(sandbox, "echo alive", workspace)
    assert out == "alive\n" and after.outcome is Outcome.SUCCEEDED


@backends
def test_setsid_daemon_dies_with_its_job(
    backend: str, make_sandbox: MakeSandbox, workspace: Path
) -> None:
    sandbox = make_sandbox(backend)
    # From inside a pid namespace the daemon cannot tell us its host pid, so it
    # keeps touching a marker file: once the job is over, nobody may recreate it.
    workspace.chmod(0o777)
    marker = workspace / "daemon-alive"
    line = (
        f"setsid sh -c 'while :; do touch {marker}; sleep 0.05; done' "
        "</dev/null >/dev/null 2>&1 & sleep 0.3; exit 0"
    )
    result, _, _ = run_in(sandbox, line, workspace)
    assert result.outcome is Outcome.SUCCEEDED
    assert marker.exists(), "the daemon never ran"
    marker.unlink()
    time.sleep(0.3)
    assert not marker.exists(), "a daemon of the job survived it"


@backends
def test_timeout_kills_every_process(
    backend: str, make_sandbox: MakeSandbox, workspace: Path
) -> None:
    sandbox = make_sandbox(backend)
    line = "sleep 60 & setsid sleep 60 & trap '' TERM; sleep 60"
    result, _, _ = run_in(sandbox, line, workspace, timeout=0.5, kill_grace=0.3)
    assert result.outcome is Outcome.TIMED_OUT
    assert result.duration < 5
    cgroup = sandbox.resources.cgroup  # type: ignore[attr-defined]
    assert cgroup is not None, "this host offers no cgroup v2 slot"
    assert not cgroup.populated(), "processes of the job (or its runtime) survived"


@backends
def test_cleanup_after_a_failed_job_leaves_nothing(backend: str, workspace: Path) -> None:
    require(backend)
    profile = SandboxProfile.model_validate(
        {"backend": backend, "limits": {"memory": "64MiB", "pids": 64}}
    )
    sandbox = create(profile, slot="failing")
    sandbox.setup()
    try:
        result, _, _ = run_in(sandbox, "sleep 60 & sleep 60", workspace, timeout=0.3, kill_grace=0)
        assert result.outcome is Outcome.TIMED_OUT
        broken, _, _ = run_in(sandbox, "exec /no/such/program", workspace)
        assert broken.outcome is Outcome.FAILED
    finally:
        sandbox.cleanup()
    assert not [item for item in leftovers() if "-failing" in item]
