"""Artifacts over real HTTP and the CLI, on both stores: the example's job
keeps its files; they are listed, downloaded (named, never a path) and saved."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.server.helpers import Server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "artifacts"
CLI = [sys.executable, "-m", "stockade.cli.main"]


def test_artifacts_listed_downloaded_and_saved(tmp_path: Path, store_url: str) -> None:
    example = tmp_path / "example"
    shutil.copytree(EXAMPLE, example)
    data = tmp_path / "data"
    url = None if store_url.startswith("sqlite") else store_url
    server = Server(data, slots=1, config=example / "stockade.yaml", database_url=url)
    try:
        made = server.client.post("/api/v1/jobs", json={"task": "report", "input": {"title": "w"}})
        assert made.status_code == 201, made.text
        job = made.json()["id"]
        deadline = time.monotonic() + 30
        while server.client.get(f"/api/v1/jobs/{job}").json()["state"] != "succeeded":
            assert time.monotonic() < deadline, server.client.get(f"/api/v1/jobs/{job}").text
            time.sleep(0.1)
        listing = server.client.get(f"/api/v1/jobs/{job}/artifacts").json()
        names = {a["name"]: a for a in listing["artifacts"]}
        assert set(names) == {"README.txt", "out/report.md", "out/data/numbers.txt"}
        assert listing["attempt"] == 1
        got = server.client.get(names["out/data/numbers.txt"]["url"])
        assert got.status_code == 200
        assert got.content == "".join(f"{i}\n" for i in range(1, 101)).encode()
        assert hashlib.sha256(got.content).hexdigest() == names["out/data/numbers.txt"]["sha256"]
        assert got.headers["content-disposition"].startswith('attachment; filename="numbers.txt"')
        assert got.headers["content-type"] == "application/octet-stream"
        for bad in ("out/shadow.txt", "../../../etc/passwd", "..%2f..%2fetc%2fpasswd", "out"):
            assert server.client.get(f"/api/v1/jobs/{job}/artifacts/{bad}").status_code == 404
        assert server.client.get("/api/v1/jobs/ffffffffffffffff/artifacts").status_code == 404
    finally:
        server.stop()
    if url is None:  # the CLI reads the store as the API does: once is enough
        _cli(job, data, tmp_path / "downloads")


def _cli(job: str, data: Path, out: Path) -> None:
    show = _stockade("show", job, "--data-dir", str(data))
    assert "out/report.md" in show.stdout, show.stderr
    saved = _stockade("artifacts", job, "-o", str(out), "--data-dir", str(data))
    assert saved.returncode == 0, saved.stderr
    assert (out / "out" / "report.md").read_text() == "# w\n"
    assert (out / "README.txt").read_text() == "Made from the example's template.\n"
    missing = _stockade("artifacts", job, "nope", "-o", str(out), "--data-dir", str(data))
    assert missing.returncode == 2 and "has no artifact 'nope'" in missing.stderr
    again = _stockade("artifacts", job, "README.txt", "-o", str(out), "--data-dir", str(data))
    assert again.returncode == 2 and "exists" in again.stderr  # nothing overwritten


def _stockade(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=_env(), check=False)


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.pop("STOCKADE_DATABASE_URL", None)
    return env


def test_a_recorded_name_never_saves_outside_the_directory(tmp_path: Path) -> None:
    """The store's record is not trusted either: a forged name cannot leave DIR."""
    import pytest

    from stockade.cli.artifacts_cmd import save_path
    from stockade.errors import UsageError

    assert save_path(str(tmp_path), "out/a/../b.txt") == str(tmp_path / "out" / "b.txt")
    for bad in ("../evil", "/etc/passwd", "a/../../evil", "..", "."):
        with pytest.raises(UsageError, match="leads out of the output directory"):
            save_path(str(tmp_path), bad)
