"""A job that outlived its worker (reattach) keeps its workspace through the
sweeps of other workers on the host, until its end is recorded: a real spool
shim, real directories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from stockade.engine.spool import Spool, live_attempts, spool_root
from stockade.runner.workspace import sweep, workspaces_dir
from stockade.sandbox import spoolshim


def test_a_running_spooled_attempts_workspace_is_spared_until_it_ends(tmp_path: Path) -> None:
    data = tmp_path / "data"
    root = spool_root(str(data), "gone-worker")
    root.mkdir(parents=True, mode=0o700)
    # The dead worker's name is in the workspace (no such pid): only the spool says it runs.
    workspace = workspaces_dir(data) / "999999999-1-1a2b3c.1"
    workspace.mkdir(parents=True)
    (workspace / "work").write_text("half done")
    gate = tmp_path / "go"
    shim = subprocess.Popen(
        [*spoolshim.launcher(str(root / "1a2b3c-1")), "sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while not (root / "1a2b3c-1.pid").exists():
            assert shim.poll() is None
        assert live_attempts(str(data)) == {"1a2b3c.1"}
        assert sweep(data, spare=live_attempts(str(data))) == []
        assert (workspace / "work").read_text() == "half done"
    finally:
        gate.touch()
        assert shim.wait(timeout=30) == 0
    # Ended, its end waiting in the spool: a restarted worker still reads the workspace.
    assert sweep(data, spare=live_attempts(str(data))) == []
    Spool(root, "1a2b3c", 1).remove()  # its end recorded (or the attempt not adopted)
    assert live_attempts(str(data)) == set()  # its workspace is the dead's again
    assert sweep(data, spare=live_attempts(str(data))) == [str(workspace)]
    assert not os.path.exists(workspace)
