"""schemathesis against the served OpenAPI document of a live `stockade serve`.

It runs the CLI in a subprocess, with the bearer token, over every operation
the document lists but the live log stream (coverage, fuzzing and stateful phases, a bounded number
of examples each: the coverage phase tries every boundary, fuzzing 10 examples) and fails on any 5xx and any response
whose status, content type or body the document does not describe. A config file steers part of the
generated data to real values (the configured task and webhook, ids of existing jobs) so
the tests get past 404/422 into the routes' real work.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.helpers import ENV_TOKEN, Server

pytest.importorskip("schemathesis")

CHECKS = (
    "not_a_server_error,response_schema_conformance,content_type_conformance,"
    "status_code_conformance"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("schemathesis") / "data", slots=1)
    yield srv
    srv.stop()


def _cli() -> list[str]:
    found = Path(sys.executable).with_name("schemathesis")
    if found.exists():
        return [str(found)]
    which = shutil.which("schemathesis")
    if which is None:
        pytest.skip("the schemathesis CLI is not installed (pip install -e '.[dev]')")
    return [which]


@pytest.mark.timeout(300)  # as the run's own hang guard: its time follows the load
def test_openapi_document_holds_under_schemathesis(server: Server, tmp_path: Path) -> None:
    jobs = []
    for n in range(3):
        response = server.client.post(
            "/api/v1/jobs", json={"task": "build", "input": {"repo": f"r{n}", "ref": "main"}}
        )
        assert response.status_code == 201, response.text
        jobs.append(response.json()["id"])
    ids = ", ".join(f'"{job}"' for job in jobs)
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f"""\
[dictionaries.tasks]
values = ["build"]

[dictionaries.jobs]
values = [{ids}]

[dictionaries.hooks]
values = ["push"]

[parameters]
"path.job_id" = {{ dictionary = "jobs", probability = 0.7 }}
"body.task" = {{ dictionary = "tasks", probability = 0.7 }}
"path.name" = {{ dictionary = "hooks", probability = 0.7 }}
"""
    )
    result = subprocess.run(
        [*_cli(), "--config-file", str(config), "run", f"{server.url}/openapi.json",
         "--header", f"Authorization: Bearer {ENV_TOKEN}", "--checks", CHECKS,
         "--phases", "coverage,fuzzing,stateful", "--max-examples", "10", "--workers", "1",
         "--seed", "4711", "--generation-database", "none", "--request-timeout", "10",
         "--no-color", "--report-dir", str(tmp_path / "report"),
         # A live log stream lasts as long as its job: tests/server/test_api.py covers it.
         "--exclude-path", "/api/v1/jobs/{job_id}/logs/stream"],
        # A hang guard only: the run's time depends on the machine's load.
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    # 14 job/hook/metrics operations (artifacts, the batch), 6 of runs, 1 of stats,
    # 1 of workers, 1 of schedules
    assert "23 selected" in output
    assert " passed" in output
    assert ENV_TOKEN not in output
