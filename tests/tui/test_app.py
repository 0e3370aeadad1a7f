"""``stockade tui``'s app driven by Textual's pilot (key presses, asserting on
widgets), on real runs in SQLite and PostgreSQL stores. Screenshots (SVG)
go to ``test-artifacts/``."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Log, Static, Tree

from stockade.store import Store, open_store
from stockade.tui.actions import Rerun
from stockade.tui.app import RunApp
from tests.tui.conftest import Recorded
from tests.tui.helpers import ARTIFACTS, STOCKADE, project, run_ci, wait_until


async def _until(pilot: Pilot[None], check: Callable[[], object], what: str) -> None:
    for _ in range(300):  # 30 s: a generous "did not hang" bound
        if check():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _labels(app: RunApp) -> list[str]:
    """Every tree label, indented by depth (collapsed nodes' children too)."""
    out: list[str] = []

    def walk(node: object, depth: int) -> None:
        for child in node.children:  # type: ignore[attr-defined]
            out.append("  " * depth + child.label.plain)
            walk(child, depth + 1)

    walk(app.query_one("#tree", Tree).root, 0)
    return out


def _log(app: RunApp) -> list[str]:
    return list(app.query_one("#log", Log).lines)


def _drive(store: Store, ref: str, size: tuple[int, int], scenario: Callable[
    [RunApp, Pilot[None]], Awaitable[None]], rerun: Rerun | None = None) -> None:  # fmt: skip
    async def main() -> None:
        app = RunApp(store, ref, rerun)
        async with app.run_test(size=size) as pilot:
            await _until(pilot, lambda: app.snapshot is not None and _log(app), "the first read")
            await scenario(app, pilot)

    asyncio.run(main())


@pytest.fixture
def opened(recorded: Recorded) -> Iterator[Store]:
    store = open_store(recorded.url)
    yield store
    store.close()


def test_tree_log_filters_search_copy_and_timeline(recorded: Recorded, opened: Store) -> None:
    size = (80, 24)

    async def scenario(app: RunApp, pilot: Pilot[None]) -> None:
        assert app.selected is not None and app.selected[0] == "job"  # the failed job
        assert "compiling" in _log(app)  # its whole output, from the store
        labels = [label.strip() for label in _labels(app)]
        for shown in ("✓ build  3/3", "✓ build[a]", "✗ test  1/1", "✗ m/p  2 test(s)",
                      "✓ TestOK  0.1s", "✗ TestBad  0.2s"):  # fmt: skip
            assert any(label.startswith(shown) for label in labels), (shown, labels)
        assert any(label.startswith("✗ test") and "exit code 1" in label for label in labels)
        head = str(app.query_one("#head", Static).content)
        assert recorded.run_id in head and "failed" in head and "1 failed, 1 passed" in head
        tag = f"{size[0]}x{size[1]}-{recorded.url.split(':')[0]}"
        ARTIFACTS.mkdir(exist_ok=True)
        app.save_screenshot(f"tui-{tag}.svg", str(ARTIFACTS))

        await pilot.press("f")  # failed only
        labels = [label.strip() for label in _labels(app)]
        assert not any("build" in label for label in labels)
        assert any(label.startswith("✗ TestBad") for label in labels)
        assert not any(label.startswith("✓ TestOK") for label in labels)
        assert "filter: failed" in str(app.query_one("#head", Static).content)

        # to the failed test: expand the job, then its package
        await pilot.press("space", "down", "space", "down")
        await _until(pilot, lambda: app.selected is not None and app.selected[0] == "test", "test")
        assert app.selected[2:] == ("m/p", "TestBad")
        assert _log(app)[0] == "bad_test.go:9: want 3"
        assert all("\x1b" not in line and "\x07" not in line for line in _log(app))
        assert any("[red]markup[/red]" in line for line in _log(app))  # text, not markup
        await pilot.press("y")
        assert app.clipboard == "m/p TestBad"
        app.save_screenshot(f"tui-failed-test-{tag}.svg", str(ARTIFACTS))

        await pilot.press("f")  # running: nothing runs in a finished run
        assert _labels(app) == []
        await pilot.press("f")  # slowest: jobs longest first
        top = [label for label in _labels(app) if not label.startswith(" ")]
        assert top[0].startswith("✓ build[") and len(top) == 4
        await pilot.press("f")
        assert "filter: all" in str(app.query_one("#head", Static).content)

        await pilot.press("up", "up", "up")  # back on the failed job: search its log
        await _until(pilot, lambda: app.selected is not None and app.selected[0] == "job", "job")
        await _until(pilot, lambda: "compiling" in _log(app), "the job's log")
        await pilot.press("slash", *"testbad", "enter")
        assert _log(app) and all("testbad" in line.lower() for line in _log(app))
        await pilot.press("escape")
        assert "compiling" in _log(app)

        await pilot.press("t")
        await pilot.pause(0.2)
        timeline = str(app.query_one("#timeline", Static).content)
        assert "build[a]"[:3] in timeline and "derived from overlapping intervals" in timeline
        app.save_screenshot(f"tui-timeline-{tag}.svg", str(ARTIFACTS))
        await pilot.press("c")  # cancelling a finished run only says so
        await pilot.pause(0.1)
        assert opened.runs.run(recorded.run_id).state.value == "failed"

    _drive(opened, recorded.run_id, size, scenario)
    shot = (ARTIFACTS / f"tui-{size[0]}x{size[1]}-{recorded.url.split(':')[0]}.svg").read_text()
    assert "build[a]" in shot and "compiling" in shot and "<svg" in shot


def test_a_large_terminal_shows_everything_unclipped(recorded: Recorded, opened: Store) -> None:
    async def scenario(app: RunApp, pilot: Pilot[None]) -> None:
        await pilot.press("space")  # expand the failed job
        tree = app.query_one("#tree", Tree)
        assert tree.size.width > 60 and app.query_one("#log", Log).size.width > 100
        screen = app.export_screenshot()
        assert "exit&#160;code&#160;1" in screen  # the job's reason, whole
        assert "2&#160;test(s)" in screen
        app.save_screenshot(f"tui-200x60-{recorded.url.split(':')[0]}.svg", str(ARTIFACTS))
        await pilot.press("t")
        await pilot.pause(0.2)
        timeline = str(app.query_one("#timeline", Static).content)
        assert "build[a]" in timeline  # bars wide enough to carry their job's name

    ARTIFACTS.mkdir(exist_ok=True)
    _drive(opened, recorded.run_id, (200, 60), scenario)


def test_follows_a_live_run_and_cancels_it(tmp_path: Path, sqlite_url: str) -> None:
    root = project(tmp_path)
    proc = subprocess.Popen(
        [*STOCKADE, "run", "slow", "--plain", "--database-url", sqlite_url], cwd=root,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    store = open_store(sqlite_url)
    try:
        wait_until(lambda: store.runs.runs(limit=1), "the run to be recorded")

        async def scenario(app: RunApp, pilot: Pilot[None]) -> None:
            await _until(pilot, lambda: "tick 3" in _log(app), "live output")
            seen = len(_log(app))
            await _until(pilot, lambda: len(_log(app)) > seen + 3, "more live output")
            lines = _log(app)
            assert lines == [f"tick {i}" for i in range(1, len(lines) + 1)]  # none twice
            assert any(label.startswith("● tick") for label in _labels(app))
            await pilot.press("f", "f")  # running
            assert [label.strip()[:6] for label in _labels(app)] == ["● tick", "● tick"]
            await pilot.press("c")  # asks for a second c first
            await pilot.pause(0.3)
            assert not store.runs.latest().cancel_requested
            await pilot.press("c")
            await _until(pilot, lambda: "cancelled" in str(app.query_one("#head", Static).content),
                         "the run to end cancelled")  # fmt: skip

        _drive(store, "latest", (80, 24), scenario)
        assert proc.wait(timeout=30) == 130
        assert store.runs.latest().state.value == "cancelled"
    finally:
        proc.kill()
        proc.wait()
        store.close()


def test_rerun_the_selected_job(tmp_path: Path, sqlite_url: str) -> None:
    root = project(tmp_path)
    run_id = run_ci(root, sqlite_url)
    store = open_store(sqlite_url)
    rerun = Rerun(store, str(root / "stockade.yaml"), str(root / "data"), sqlite_url)

    async def scenario(app: RunApp, pilot: Pilot[None]) -> None:
        await pilot.press("up", "up")  # from the failed job: its step, then build[c]
        await _until(pilot, lambda: app.selected is not None and app.selected[0] == "job", "job")
        await pilot.press("r")
        await _until(pilot, lambda: app.ref != run_id, "the TUI to switch to the rerun")
        await _until(pilot, lambda: app.snapshot is not None and not app.snapshot.live, "its end")

    try:
        _drive(store, run_id, (80, 24), scenario, rerun)
        new = store.runs.latest()
        assert new.source_run == run_id and new.options.get("rerun")
        assert new.state.value == "succeeded"
        ran = [j for j in store.runs.jobs(new.id) if not (j.reason or "").startswith("reused")]
        assert [(j.step, j.item) for j in ran] == [("build", "c")]
        # a rerun that cannot start says why, in one line
        broken = Rerun(store, str(root / "missing.yaml"), None, sqlite_url)
        found, why = broken.start(run_id, ["--failed"])
        assert found is None and "missing.yaml" in why and "\n" not in why
    finally:
        store.close()
