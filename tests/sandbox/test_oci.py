"""The oci backend, for real under runc: containers that leave nothing behind."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from stockade.runner.result import Outcome
from stockade.sandbox.base import Sandbox
from stockade.sandbox.leftovers import leftovers
from stockade.sandbox.oci import OciSandbox
from tests.sandbox.helpers import run_in

MakeSandbox = Callable[..., Sandbox]


def _mine(sandbox: OciSandbox) -> list[str]:
    """Containers, state and cgroups of this sandbox's slot still present."""
    return [item for item in leftovers() if sandbox.prefix in item]


def test_job_is_isolated_and_output_streams_through_the_runtime(
    make_sandbox: MakeSandbox, workspace: Path, outdir: Path
) -> None:
    sandbox = make_sandbox(
        "oci", mounts=[{"type": "bind", "source": str(outdir), "target": "/out", "readonly": False}]
    )
    line = (
        "id -u; hostname; touch /usr/x 2>&1; echo done > /out/f; "
        "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; "
        'echo "k=v" >> "$STOCKADE_OUTPUT"'
    )
    result, out, _ = run_in(sandbox, line, workspace)
    assert result.outcome is Outcome.SUCCEEDED, result
    assert out.startswith("65534\nstockade\n")
    assert "Read-only file system" in out
    assert "CapEff:\t0000000000000000" in out and "NoNewPrivs:\t1" in out
    assert "Seccomp:\t2" in out
    assert (outdir / "f").read_text() == "done\n"
    assert result.outputs["k"] == "v"


def test_limits_are_in_config_json(make_sandbox: MakeSandbox, workspace: Path) -> None:
    sandbox = make_sandbox(
        "oci", limits={"memory": "64MiB", "pids": 50, "cpu": 0.5, "open_files": 256}
    )
    assert isinstance(sandbox, OciSandbox)
    _, out, _ = run_in(sandbox, "ulimit -n", workspace)
    assert out == "256\n"
    spec = json.loads((Path(sandbox.bundle) / "config.json").read_text())
    res = spec["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20, "swap": 64 << 20}
    assert res["pids"] == {"limit": 50}
    assert res["cpu"] == {"quota": 50000, "period": 100000}


def test_a_killed_job_leaves_no_container_cgroup_or_state(
    make_sandbox: MakeSandbox, workspace: Path
) -> None:
    sandbox = make_sandbox("oci", limits={"memory": "64MiB"})
    assert isinstance(sandbox, OciSandbox)
    result, _, _ = run_in(sandbox, "trap '' TERM; sleep 60", workspace, timeout=0.5, kill_grace=0.2)
    assert result.outcome is Outcome.TIMED_OUT
    assert not _mine(sandbox)
    assert not [n for n in os.listdir(sandbox.state_dir) if n.startswith(sandbox.prefix)]
    ok, _, _ = run_in(sandbox, "true", workspace)
    assert ok.outcome is Outcome.SUCCEEDED
    assert not _mine(sandbox)


def test_cleanup_removes_the_bundle(make_sandbox: MakeSandbox, workspace: Path) -> None:
    sandbox = make_sandbox("oci")
    assert isinstance(sandbox, OciSandbox)
    run_in(sandbox, "true", workspace)
    assert os.path.isdir(sandbox.bundle)
    sandbox.cleanup()
    assert not os.path.exists(sandbox.bundle)
    assert not _mine(sandbox)
