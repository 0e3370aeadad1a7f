"""The dashboard's run page in a real headless Chromium (Debian's, driven by Playwright),
against a real `stockade serve` running real pipelines.

A run whose failed test prints markup (it must show as text, and no dialog
may fire) is followed to its end with per-step progress and test results;
a slow run is cancelled from its page. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.server.helpers import ENV_TOKEN, Server
from tests.server.test_dashboard import ARTIFACTS, browser, login, page

sync_api = pytest.importorskip("playwright.sync_api")

__all__ = ["browser", "page"]  # fixtures shared with the jobs dashboard's tests

HOSTILE = '<script>alert(1)</script> <img src=x onerror="alert(2)">'
EVENTS = [
    {"Action": "run", "Package": "m/p", "Test": "TestOK"},
    {"Action": "pass", "Package": "m/p", "Test": "TestOK", "Elapsed": 0.1},
    {"Action": "output", "Package": "m/p", "Test": "TestBad", "Output": HOSTILE + "\n"},
    {"Action": "fail", "Package": "m/p", "Test": "TestBad", "Elapsed": 0.2},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("dashboard-runs")
    (base / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    config: dict[str, Any] = {
        "version": 1,
        "tasks": {
            "gotest": {"workdir": str(base), "run": "cat events.jsonl; exit 1"},
            "build": {"run": "echo built"},
            "wait": {"run": "sleep 60"},
        },
        "pipelines": {
            "ci": {
                "steps": {
                    "build": {"task": "build", "for_each": ["a", "b", "c"]},
                    "test": {"task": "gotest", "needs": ["build"], "events": "test2json"},
                    "publish": {"task": "build", "needs": ["test"]},
                }
            },
            "slow": {"steps": {"wait": {"task": "wait", "for_each": ["x", "y"]}}},
        },
    }
    path = base / "stockade.yaml"
    path.write_text(yaml.safe_dump(config))
    srv = Server(base / "data", slots=1, config=path)
    yield srv
    srv.stop()


def _start(server: Server, pipeline: str) -> str:
    response = server.client.post("/api/v1/runs", json={"pipeline": pipeline})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_run_page_shows_steps_tests_and_cancels(page: Any, server: Server) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    run_id = _start(server, "ci")
    login(page, server)
    page.click("header a.nav >> text=Runs")
    sync_api.expect(page.locator("#runs-view")).to_be_visible()
    # the jobs page's header: its links, the health badge, log out (the runs page had only links)
    sync_api.expect(page.locator("header a.nav")).to_have_text(["Jobs", "Runs", "Workers"])
    sync_api.expect(page.locator("#health")).to_have_text(re.compile(r"health: (ok|degraded)"))
    sync_api.expect(page.locator("#logout")).to_be_visible()
    link = page.locator("#runs tbody a", has_text=run_id)
    sync_api.expect(link).to_be_visible()
    link.click()

    sync_api.expect(page.locator("#run-view")).to_be_visible()
    sync_api.expect(page.locator("#run-state .state")).to_have_text("failed", timeout=20_000)
    build = page.locator('#run-steps tr[data-step="build"]')
    sync_api.expect(build).to_contain_text("succeeded")
    sync_api.expect(build).to_contain_text("3 succeeded")
    assert build.locator("progress").get_attribute("value") == "3"
    sync_api.expect(page.locator('#run-steps tr[data-step="publish"]')).to_contain_text("skipped")
    sync_api.expect(page.locator("#run-tests")).to_have_text("1 failed, 1 passed")
    failed = page.locator("#run-failed-tests .failed-test")
    sync_api.expect(failed).to_have_count(1)
    sync_api.expect(failed.locator("h3")).to_have_text("FAIL m/p TestBad")
    sync_api.expect(failed.locator("pre")).to_have_text(HOSTILE + "\n")  # text, not markup
    assert page.locator("#run-failed-tests img, #run-failed-tests script").count() == 0
    sync_api.expect(page.locator("#run-jobs tbody tr")).to_have_count(4)
    sync_api.expect(page.locator("#run-cancel")).to_be_disabled()
    # the timeline: an SVG the page draws, a bar per job that ran (publish was skipped)
    bars = page.locator("#run-timeline svg rect.bar")
    sync_api.expect(bars).to_have_count(4)
    failed_bar = page.locator('#run-timeline rect[data-status="failed"]')
    sync_api.expect(failed_bar).to_have_count(1)
    assert failed_bar.get_attribute("data-job") == "test"
    assert "critical" in (failed_bar.get_attribute("class") or "")  # it ended last
    sync_api.expect(page.locator("#run-timeline-note")).to_contain_text("overlapping intervals")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-run.png"), full_page=True)
    page.locator("#run-timeline").screenshot(path=str(ARTIFACTS / "dashboard-run-timeline.png"))

    # a job links to the jobs dashboard's page of that job
    page.locator("#run-jobs tbody a", has_text="build[a]").click()
    sync_api.expect(page.locator("#job-view")).to_be_visible()
    sync_api.expect(page.locator("#job-log")).to_contain_text("built")

    slow = _start(server, "slow")
    page.goto(f"{server.url}/ui/runs.html#/runs/{slow}")
    sync_api.expect(page.locator('#run-steps tr[data-step="wait"]')).to_contain_text(
        "2 running", timeout=20_000
    )
    page.click("#run-cancel")
    sync_api.expect(page.locator("#run-action")).to_have_text("cancelling")
    sync_api.expect(page.locator("#run-state .state")).to_have_text("cancelled", timeout=20_000)
    assert page.dialogs == []
    assert requests and not any(ENV_TOKEN in url for url in requests)
    page.click("header a.nav >> text=Jobs")
    sync_api.expect(page.locator("#jobs-view")).to_be_visible()
    page.click("header a.nav >> text=Runs")
    page.click("#logout")  # signs out of the whole dashboard
    sync_api.expect(page.locator("#login")).to_be_visible()


def test_run_page_without_a_token_says_to_sign_in(page: Any, server: Server) -> None:
    page.goto(server.url + "/ui/runs.html#/")
    sync_api.expect(page.locator("#signed-out")).to_be_visible()
    assert Path(ARTIFACTS).parent.exists()
