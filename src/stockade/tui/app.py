"""The Textual app of ``stockade tui``: a run's tree, the selected node's log,
the timeline, and keys to filter, search, rerun, cancel and copy.

Every store read and write runs in a worker thread (``run_worker(...,
thread=True)``), so the app's event loop never waits on the database and a
slow store never stalls the screen; the run it watches is another process,
or its own thread, and only ever sees reads. Reruns go through
``stockade rerun`` (a new process, see :mod:`stockade.tui.actions`).
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, Log, Static, Tree
from textual.widgets.tree import TreeNode

from stockade.printable import printable
from stockade.store import Store
from stockade.tui.actions import Rerun
from stockade.tui.model import (
    Filter,
    LogCursor,
    Node,
    Snapshot,
    job_name,
    load,
    read_log,
    tree,
)  # fmt: skip
from stockade.tui.timeline_view import timeline_text

__all__ = ["RunApp"]

Key = tuple[str, ...]
#: Seconds between reads of a live run.
POLL = 1.0
#: Seconds within which a second ``c`` confirms the cancel.
CONFIRM_WITHIN = 3.0


class RunApp(App[None]):
    """Watch one run; ``ref`` is ``latest``, an id or a unique prefix."""

    TITLE = "stockade"
    CSS = """
    #head { height: 1; background: $panel; padding: 0 1; }
    #body { height: 1fr; }
    #tree { width: 2fr; min-width: 30; border: round $primary; }
    #side { width: 3fr; }
    #log, #timeline { height: 1fr; border: round $secondary; }
    #timeline { display: none; }
    #search { display: none; dock: bottom; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "filter", "Filter"),
        Binding("slash", "search", "Search"),
        Binding("t", "timeline", "Timeline"),
        Binding("r", "rerun_job", "Rerun job"),
        Binding("R", "rerun_failed", "Rerun failed"),
        Binding("c", "cancel_run", "Cancel run"),
        Binding("y", "copy_test", "Copy test"),
        Binding("escape", "clear_search", "Clear", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, store: Store, ref: str, rerun: Rerun | None = None) -> None:
        super().__init__()
        self.store, self.ref, self.rerun = store, ref, rerun
        self.snapshot: Snapshot | None = None
        self.filter = Filter.ALL
        self.selected: Key | None = None
        self.log_lines: list[str] = []
        self.search = ""
        self._shape: Any = None
        self._cursor: LogCursor | None = None
        self._expanded: set[Key] = set()
        self._collapsed: set[Key] = set()
        self._log_lock = threading.Lock()
        self._loading = threading.Event()
        self._cancel_asked = 0.0

    # -- layout ---------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="head")
        with Horizontal(id="body"):
            yield Tree[Key]("run", id="tree")
            with Vertical(id="side"):
                yield Log(id="log", highlight=False, auto_scroll=True)
                yield Static(id="timeline")
        yield Input(placeholder="search the log (Enter; Esc clears)", id="search")
        yield Footer()

    def on_mount(self) -> None:
        tree_widget = self.query_one("#tree", Tree)
        tree_widget.show_root = False
        tree_widget.focus()
        self.query_one("#log", Log).border_title = "log"
        self.query_one("#timeline", Static).border_title = "timeline"
        self.refresh_run()
        self._timer = self.set_interval(POLL, self.refresh_run)

    # -- reading the store (threads) -----------------------------------------------

    def refresh_run(self) -> None:
        """Read the run again, unless the last read is still going (a slow
        store gets one read at a time, not a queue of them)."""
        if not self._loading.is_set():
            self._loading.set()
            self._load()

    @work(thread=True, group="load", exit_on_error=False)
    def _load(self) -> None:
        try:
            snap = load(self.store, self.ref)
            self.call_from_thread(self._apply, snap)
            cursor = self._cursor
            if cursor is not None:
                final = not self._job_live(snap, cursor.job_id)
                with self._log_lock:  # one reader of a cursor at a time
                    lines = read_log(self.store, cursor, final=final)
                if lines:
                    self.call_from_thread(self._add_log, cursor, lines)
        except Exception as exc:  # the store is down or the run is gone: say so, retry
            self.call_from_thread(self._failed, exc)
        finally:
            self._loading.clear()

    def _failed(self, exc: BaseException) -> None:
        """A store read or write failed: one line, and the view goes on."""
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        self.notify(f"store: {printable(first)}", severity="error", timeout=3)

    @staticmethod
    def _job_live(snap: Snapshot, job_id: str) -> bool:
        return any(j.id == job_id and j.finished_at is None for j in snap.jobs)

    def _apply(self, snap: Snapshot) -> None:
        self.snapshot = snap
        self.ref = snap.run["id"]
        if not snap.live:
            self._timer.pause()
        self._render_head()
        self._render_tree()
        self._render_timeline()
        if self.selected is None:
            self._select_default()

    # -- rendering -------------------------------------------------------------

    def _render_head(self) -> None:
        snap = self.snapshot
        assert snap is not None
        run = snap.run
        tests = ", ".join(f"{n} {s}" for s, n in sorted(run["tests"].items())) or "no tests"
        took = (run["finished_at"] or snap.now) - (run["started_at"] or snap.now)
        head = Text.assemble(
            ("run ", "dim"), run["id"], ("  ", ""), run["pipeline"], ("  ", ""),
            (run["state"], "bold"), f"  {took:.1f}s  {tests}  ", ("filter: ", "dim"),
            self.filter.value,
        )  # fmt: skip
        if self.search:
            head.append(f"  search: {self.search}", style="dim")
        self.query_one("#head", Static).update(head)

    def _render_tree(self) -> None:
        assert self.snapshot is not None
        nodes = tree(self.snapshot, self.filter)
        widget = self.query_one("#tree", Tree)
        shape = _shape(nodes)
        if shape == self._shape:
            _relabel(widget.root, nodes)
            return
        self._shape = shape
        widget.clear()
        _add(widget.root, nodes, self._expanded, self._collapsed)
        if self.selected is not None:
            self.call_after_refresh(self._move_cursor, self.selected)

    def _render_timeline(self) -> None:
        assert self.snapshot is not None
        pane = self.query_one("#timeline", Static)
        if pane.display:
            pane.update(timeline_text(self.snapshot.timeline, max(pane.size.width - 2, 40)))

    def _select_default(self) -> None:
        """Start on the first failed job, else the first job."""
        assert self.snapshot is not None
        jobs = self.snapshot.jobs
        failed = [j for j in jobs if j.state.value == "failed"]
        chosen = (failed or jobs)[:1]
        if chosen:
            self._show(("job", chosen[0].id))
            self.call_after_refresh(self._move_cursor, ("job", chosen[0].id))

    def _move_cursor(self, key: Key) -> None:
        widget = self.query_one("#tree", Tree)
        found = _find(widget.root, key)
        if found is not None:
            parent = found.parent
            while parent is not None:
                parent.expand()
                parent = parent.parent
            widget.move_cursor(found)

    # -- the log pane -----------------------------------------------------------

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[Key]) -> None:
        if event.node.data is not None and event.node.data != self.selected:
            self._show(event.node.data)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Key]) -> None:
        if event.node.data is not None:
            self._expanded.add(event.node.data)
            self._collapsed.discard(event.node.data)

    def on_tree_node_collapsed(self, event: Tree.NodeCollapsed[Key]) -> None:
        if event.node.data is not None:
            self._collapsed.add(event.node.data)
            self._expanded.discard(event.node.data)

    def _show(self, key: Key) -> None:
        """Point the log pane at ``key``: a job's log, or a test's output."""
        self.selected = key
        self.log_lines = []
        self.query_one("#log", Log).clear()
        log = self.query_one("#log", Log)
        if key[0] == "job":
            self._cursor = LogCursor(key[1])
            log.border_title = f"log of {self._job_label(key[1])}"
            self._read_log(self._cursor)
        elif key[0] == "test":
            self._cursor = None
            log.border_title = f"output of {key[3]}"
            self._add_log(None, self._test_output(key))
        else:
            self._cursor = None
            log.border_title = "log"

    def _job_label(self, job_id: str) -> str:
        snap = self.snapshot
        jobs = [] if snap is None else [j for j in snap.jobs if j.id == job_id]
        return job_name(jobs[0]) if jobs else job_id

    def _test_output(self, key: Key) -> list[str]:
        assert self.snapshot is not None
        for test in self.snapshot.tests:
            if (test.job_id, test.package, test.test) == key[1:]:
                if not test.output:
                    return [
                        f"{test.status} in {test.elapsed:.2f}s (output is kept for failed tests)"
                    ]
                return [printable(Text.from_ansi(line).plain) for line in test.output.splitlines()]
        return []

    @work(thread=True, group="log", exit_on_error=False)
    def _read_log(self, cursor: LogCursor) -> None:
        snap = self.snapshot
        final = snap is not None and not self._job_live(snap, cursor.job_id)
        try:
            with self._log_lock:
                lines = read_log(self.store, cursor, final=final)
        except Exception as exc:
            self.call_from_thread(self._failed, exc)
            return
        self.call_from_thread(self._add_log, cursor, lines)

    def _add_log(self, cursor: LogCursor | None, lines: list[str]) -> None:
        if cursor is not self._cursor:
            return  # the selection moved on while this was read
        self.log_lines += lines
        shown = [line for line in lines if self.search.lower() in line.lower()]
        if shown:
            self.query_one("#log", Log).write_lines(shown)

    def _refill_log(self) -> None:
        log = self.query_one("#log", Log)
        log.clear()
        needle = self.search.lower()
        shown = [line for line in self.log_lines if needle in line.lower()]
        log.write_lines(shown)
        if self.search:
            self.notify(f"{len(shown)} line(s) match {self.search!r}", timeout=3)

    # -- actions ----------------------------------------------------------------

    def action_filter(self) -> None:
        self.filter = self.filter.next()
        if self.snapshot is not None:
            self._render_head()
            self._render_tree()

    def action_search(self) -> None:
        field = self.query_one("#search", Input)
        field.display = True
        field.value = self.search
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.search = event.value
        event.input.display = False
        self.query_one("#tree", Tree).focus()
        self._refill_log()
        if self.snapshot is not None:
            self._render_head()

    def action_clear_search(self) -> None:
        field = self.query_one("#search", Input)
        field.display = False
        self.query_one("#tree", Tree).focus()
        if self.search:
            self.search = ""
            self._refill_log()
            if self.snapshot is not None:
                self._render_head()

    def action_timeline(self) -> None:
        pane = self.query_one("#timeline", Static)
        pane.display = not pane.display
        self.query_one("#log", Log).display = not pane.display
        self.call_after_refresh(self._render_timeline)

    def action_copy_test(self) -> None:
        key = self.selected
        if key is None or key[0] != "test":
            self.notify("select a test to copy its name", severity="warning")
            return
        name = f"{key[2]} {key[3]}".strip()
        self.copy_to_clipboard(name)
        self.notify(f"copied {name}")

    def action_cancel_run(self) -> None:
        if self.snapshot is not None and not self.snapshot.live:
            self.notify(f"run {self.ref} is already {self.snapshot.run['state']}")
            return
        now = time.monotonic()
        if now - self._cancel_asked > CONFIRM_WITHIN:
            self._cancel_asked = now
            self.notify(f"press c again to cancel run {self.ref}", timeout=CONFIRM_WITHIN)
            return
        self._cancel_asked = 0.0
        self._cancel()

    @work(thread=True, group="act", exit_on_error=False)
    def _cancel(self) -> None:
        try:
            run_id, what = self.store.runs.request_cancel(self.ref)
        except Exception as exc:
            self.call_from_thread(self._failed, exc)
            return
        self.call_from_thread(self.notify, f"run {run_id}: {what}")

    def action_rerun_job(self) -> None:
        key = self.selected
        if key is None or self.snapshot is None:
            return
        job_id = key[1] if key[0] in ("job", "package", "test") else None
        jobs = [j for j in self.snapshot.jobs if j.id == job_id]
        step = jobs[0].step if jobs else None
        if step is None:
            self.notify("select a job to rerun", severity="warning")
            return
        item = jobs[0].item
        target = step if item is None else f"{step}/{item}"
        self._start_rerun([target])

    def action_rerun_failed(self) -> None:
        self._start_rerun(["--failed"])

    def _start_rerun(self, args: list[str]) -> None:
        if self.rerun is None:
            self.notify("reruns are off here", severity="warning")
            return
        self.notify(f"stockade rerun {self.ref} {' '.join(args)}")
        self._rerun(args)

    @work(thread=True, group="act", exit_on_error=False)
    def _rerun(self, args: list[str]) -> None:
        assert self.rerun is not None
        try:
            new_run, problem = self.rerun.start(self.ref, args)
        except Exception as exc:
            self.call_from_thread(self._failed, exc)
            return
        if new_run is not None:
            self.call_from_thread(self._switch, new_run)
        else:
            self.call_from_thread(self.notify, problem, severity="error")

    def _switch(self, run_id: str) -> None:
        """Watch ``run_id`` (the rerun just started) instead."""
        self.ref, self.selected, self._cursor, self._shape = run_id, None, None, None
        self._expanded.clear()
        self._collapsed.clear()
        self.query_one("#log", Log).clear()
        self.notify(f"watching rerun {run_id}")
        self._timer.resume()
        self.refresh_run()


def _shape(nodes: list[Node]) -> tuple[Any, ...]:
    return tuple((n.key, _shape(n.children)) for n in nodes)


def _relabel(parent: TreeNode[Key], nodes: list[Node]) -> None:
    for child, node in zip(parent.children, nodes, strict=True):
        if child.label != node.label:
            child.set_label(node.label)
        _relabel(child, node.children)


def _add(parent: TreeNode[Key], nodes: list[Node], expanded: set[Key], collapsed: set[Key]) -> None:
    """Add ``nodes``; steps start expanded, jobs and packages collapsed, and
    a node keeps what the user made of it across rebuilds."""
    for node in nodes:
        if node.children:
            child = parent.add(node.label, data=node.key)
            _add(child, node.children, expanded, collapsed)
            if node.key in expanded or (node.key[0] == "step" and node.key not in collapsed):
                child.expand()
        else:
            parent.add_leaf(node.label, data=node.key)


def _find(parent: TreeNode[Key], key: Key) -> TreeNode[Key] | None:
    for child in parent.children:
        if child.data == key:
            return child
        found = _find(child, key)
        if found is not None:
            return found
    return None
