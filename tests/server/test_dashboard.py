"""The web dashboard in a real headless Chromium (Debian's, driven by Playwright).

A real `stockade serve` runs a config of our own: a job that prints a line
every 0.3 s (its log must grow while the page watches), one that prints HTML
and script (it must show as text, and no dialog may fire), and one that
prints a secret (the page must show it masked). The screenshot of the job
page is kept in ``test-artifacts/dashboard.png``.
"""

from __future__ import annotations

import re
import shlex
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.server.helpers import ENV_TOKEN, ROOT, Server

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = ROOT / "test-artifacts"
SECRET = "dashboard-secret-never-shown-9431"
HOSTILE = '<script>alert(1)</script> <img src=x onerror="alert(2)"> </pre><b>bold</b>'

CONFIG: dict[str, Any] = {
    "version": 1,
    "secrets": {"DASH_SECRET": {"env": "DASH_SECRET"}},
    "tasks": {
        "ticker": {
            "description": "A line every 0.3 s.",
            "run": 'for i in $(seq 1 200); do echo "tick $i"; sleep 0.3; done',
            "timeout": "120s",
            "max_attempts": 1,
        },
        "hostile": {
            "description": "Prints markup that must stay text.",
            "run": "printf '%s\\n' " + shlex.quote(HOSTILE),
            "max_attempts": 1,
        },
        "uploader": {
            "description": "Reports its progress, then waits.",
            "run": "echo '::progress value=40::uploading part 2 of 5'; sleep 60",
            "timeout": "120s",
            "max_attempts": 1,
        },
        "notified": {
            "description": "Tells a command when it succeeds.",
            "run": "true",
            "max_attempts": 1,
            "notify": [{"on": ["succeeded"], "command": ["true"]}],
        },
        "leaky": {
            "description": "Prints its secret.",
            "secrets": ["DASH_SECRET"],
            "run": 'echo "the secret is $DASH_SECRET"',
            "max_attempts": 1,
        },
    },
    "server": {"max_body": "64KiB"},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("dashboard")
    config = base / "stockade.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    mp = pytest.MonkeyPatch()
    mp.setenv("DASH_SECRET", SECRET)
    try:
        srv = Server(base / "data", slots=3, config=config)
    finally:
        mp.undo()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; `make test` does)")
    with sync_api.sync_playwright() as pw:
        try:
            chrome = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=30_000)
        except sync_api.Error as exc:
            pytest.skip(f"Chromium at {CHROMIUM} does not start: {str(exc).splitlines()[0]}")
        yield chrome
        chrome.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    page.set_default_timeout(15_000)
    yield page
    context.close()


def submit(server: Server, task: str) -> str:
    response = server.client.post("/api/v1/jobs", json={"task": task})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def login(page: Any, server: Server) -> None:
    page.goto(server.url + "/")
    sync_api.expect(page.locator("#login")).to_be_visible()
    page.fill("#token", ENV_TOKEN)
    page.click("#login-form button[type=submit]")
    sync_api.expect(page.locator("#jobs-view")).to_be_visible()


def test_page_is_public_but_the_api_is_not(server: Server) -> None:
    for path in ("/", "/ui/app.js", "/ui/style.css", "/ui/"):
        response = httpx.get(server.url + path)
        assert response.status_code == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(server.url + "/api/v1/jobs").status_code == 401
    assert httpx.get(server.url + "/ui/../pyproject.toml").status_code == 404


def test_wrong_token_is_refused(page: Any, server: Server) -> None:
    page.goto(server.url + "/")
    page.fill("#token", "stk_not-a-real-token")
    page.click("#login-form button[type=submit]")
    sync_api.expect(page.locator("#login-error")).to_have_text("Token refused.")
    assert page.evaluate("sessionStorage.getItem('stockade.token')") is None


def test_login_list_live_log_cancel(page: Any, server: Server) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    job_id = submit(server, "ticker")
    login(page, server)

    row = page.locator(f'#jobs tbody tr[data-job-id="{job_id}"]')
    sync_api.expect(row).to_be_visible()
    sync_api.expect(row.locator(".state")).to_have_text("running", timeout=20_000)
    # Live list: a job submitted now appears without a reload.
    other = submit(server, "hostile")
    sync_api.expect(page.locator(f'#jobs tbody tr[data-job-id="{other}"]')).to_be_visible()
    # Filters.
    page.select_option("#filter-state", "running")
    sync_api.expect(page.locator(f'#jobs tbody tr[data-job-id="{other}"]')).to_have_count(0)
    sync_api.expect(row).to_be_visible()
    page.select_option("#filter-state", "")
    page.fill("#filter-task", "nonesuch")
    sync_api.expect(page.locator("#jobs-empty")).to_be_visible()
    page.fill("#filter-task", "")
    sync_api.expect(page.locator(f'#jobs tbody tr[data-job-id="{other}"]')).to_be_visible()
    # Search: an id prefix, then a word of a command (the box was not there).
    page.fill("#filter-q", other[:12])
    sync_api.expect(page.locator("#jobs tbody tr")).to_have_count(1)
    sync_api.expect(page.locator(f'#jobs tbody tr[data-job-id="{other}"]')).to_be_visible()
    page.fill("#filter-q", "TICK $I")
    sync_api.expect(row).to_be_visible()
    sync_api.expect(page.locator(f'#jobs tbody tr[data-job-id="{other}"]')).to_have_count(0)
    page.fill("#filter-q", "")
    # The chart of the last hour's ends, drawn by the page: the hostile job succeeded.
    page.wait_for_selector("#ends-chart svg rect.bar.succeeded", timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-jobs.png"), full_page=True)

    row.locator("a").click()
    sync_api.expect(page.locator("#job-view")).to_be_visible()
    sync_api.expect(page.locator("#job-id")).to_have_text(job_id)
    log = page.locator("#job-log")
    sync_api.expect(log).to_contain_text("tick 2")
    first = log.text_content() or ""
    started = time.monotonic()
    sync_api.expect(log).to_contain_text(_next_tick(first), timeout=10_000)
    sync_api.expect(log).not_to_have_text(first)
    grown = log.text_content() or ""
    assert len(grown) > len(first), "the log did not grow while watched"
    assert time.monotonic() - started < 10
    sync_api.expect(page.locator("#job-fields")).to_contain_text("ticker")
    sync_api.expect(page.locator("#job-attempts tbody tr")).to_have_count(1)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    page.click("#job-cancel")
    sync_api.expect(page.locator("#job-state .state")).to_have_text("cancelled", timeout=20_000)
    sync_api.expect(page.locator("#job-log-status")).to_contain_text("finished: cancelled")
    sync_api.expect(page.locator("#job-retry")).to_be_enabled()
    assert server.client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "cancelled"
    sync_api.expect(page.locator("#health")).to_have_text(re.compile(r"health: (ok|degraded)"))
    # The ended attempt says what it used.
    sync_api.expect(page.locator("#job-attempts tbody tr")).to_contain_text(
        re.compile(r"cpu \d+\.\d\d s user")
    )
    page.screenshot(path=str(ARTIFACTS / "dashboard-cancelled.png"), full_page=True)

    # Retry queues it again; the same page follows the new attempt's log.
    before = log.text_content() or ""
    page.click("#job-retry")
    sync_api.expect(page.locator("#job-action")).to_have_text("retry: queued")
    sync_api.expect(page.locator("#job-state .state")).to_have_text("running", timeout=20_000)
    sync_api.expect(page.locator("#job-attempts tbody tr")).to_have_count(2)
    sync_api.expect(log).to_contain_text("— attempt 2 —")
    page.wait_for_function(
        "n => document.getElementById('job-log').textContent.split('tick 1\\n').length > n",
        arg=before.count("tick 1\n") + 1,
    )
    page.click("#job-cancel")
    sync_api.expect(page.locator("#job-state .state")).to_have_text("cancelled", timeout=20_000)

    # The token travels in headers only, never in a URL.
    assert requests and not any(ENV_TOKEN in url for url in requests)
    assert page.dialogs == []


def _next_tick(text: str) -> str:
    ticks = [int(n) for n in re.findall(r"tick (\d+)", text)]
    return f"tick {max(ticks) + 2}"


def test_hostile_output_stays_text(page: Any, server: Server) -> None:
    job_id = submit(server, "hostile")
    login(page, server)
    page.goto(f"{server.url}/#/jobs/{job_id}")
    log = page.locator("#job-log")
    sync_api.expect(page.locator("#job-log-status")).to_contain_text("finished", timeout=20_000)
    sync_api.expect(log).to_contain_text("<script>alert(1)</script>")
    sync_api.expect(log).to_contain_text('<img src=x onerror="alert(2)">')
    assert page.locator("#job-log script, #job-log img, #job-log b").count() == 0
    assert page.locator("img").count() == 0
    page.wait_for_timeout(500)
    assert page.dialogs == []


def test_secrets_are_masked_on_the_page(page: Any, server: Server) -> None:
    job_id = submit(server, "leaky")
    login(page, server)
    page.goto(f"{server.url}/#/jobs/{job_id}")
    sync_api.expect(page.locator("#job-log-status")).to_contain_text("finished", timeout=20_000)
    sync_api.expect(page.locator("#job-log")).to_contain_text("the secret is")
    assert SECRET not in page.content()
    assert SECRET not in (page.locator("body").text_content() or "")


def test_a_running_jobs_progress_is_shown(page: Any, server: Server) -> None:
    job_id = submit(server, "uploader")
    login(page, server)
    page.goto(f"{server.url}/#/jobs/{job_id}")
    sync_api.expect(page.locator("#job-state .state")).to_have_text("running", timeout=20_000)
    progress = page.locator("#job-progress")
    sync_api.expect(progress).to_be_visible()
    sync_api.expect(page.locator("#job-progress-text")).to_have_text("40% uploading part 2 of 5")
    assert page.locator("#job-progress-bar").evaluate("bar => bar.value") == 40
    page.click("#job-cancel")
    sync_api.expect(page.locator("#job-state .state")).to_have_text("cancelled", timeout=20_000)
    sync_api.expect(progress).to_be_hidden()  # only while the job runs


def test_a_finished_jobs_page_names_its_worker_and_the_workers_page_lists_it(
    page: Any, server: Server
) -> None:
    """A finished job holds no worker any more; its page named none ("—")
    while its attempts table named it."""
    job_id = submit(server, "hostile")
    login(page, server)
    page.goto(f"{server.url}/#/jobs/{job_id}")
    sync_api.expect(page.locator("#job-state .state")).to_have_text("succeeded", timeout=20_000)
    attempt_worker = page.locator("#job-attempts tbody tr td").nth(1)
    sync_api.expect(attempt_worker).not_to_have_text("—")
    named = attempt_worker.text_content() or ""
    fields = page.locator("#job-fields")
    worker = fields.locator("dt:text-is('worker') + dd")
    sync_api.expect(worker).to_have_text(named)

    page.click("a.nav:text-is('Workers')")
    sync_api.expect(page.locator("#workers-view")).to_be_visible()
    row = page.locator(f'#workers tbody tr[data-worker="{named}"]')
    sync_api.expect(row).to_be_visible()
    sync_api.expect(row).to_contain_text("0 / 3")  # the embedded worker: idle, 3 slots
    assert page.dialogs == []


def test_a_jobs_page_shows_its_notifications(page: Any, server: Server) -> None:
    job_id = submit(server, "notified")

    def delivered() -> bool:
        notes = server.client.get(f"/api/v1/jobs/{job_id}").json()["notifications"]
        return bool(notes) and notes[0]["state"] == "delivered"

    deadline = time.monotonic() + 30
    while not delivered():
        assert time.monotonic() < deadline, "the notification was never delivered"
        time.sleep(0.2)
    login(page, server)
    page.goto(f"{server.url}/#/jobs/{job_id}")
    sync_api.expect(page.locator("#job-notifications li")).to_have_text(
        "command true: delivered after 1 try"
    )
