"""A worker name belongs to one live process: what tells a live holder from a dead one."""

from __future__ import annotations

import socket
import subprocess
from typing import Any

import pytest
import sqlalchemy as sa

from stockade.errors import NameInUse
from stockade.store import Store
from stockade.store import schema as t
from stockade.store.liveness import start_ticks, this_process


def _row(store: Store, name: str) -> dict[str, Any]:
    with store.db.read() as conn:
        return dict(
            conn.execute(sa.select(t.workers).where(t.workers.c.id == name)).mappings().one()
        )


def _set(store: Store, name: str, **values: Any) -> None:
    with store.db.transaction() as conn:
        conn.execute(sa.update(t.workers).where(t.workers.c.id == name).values(**values))


def _dead_pid() -> tuple[int, int]:
    """The pid and start time of a process that has exited (and been reaped)."""
    child = subprocess.Popen(["sleep", "30"])
    ticks = start_ticks(child.pid)
    assert ticks is not None
    child.kill()
    child.wait()
    return child.pid, ticks


def test_a_name_held_by_a_live_process_is_refused_and_nothing_changes(store: Store) -> None:
    store.journal.register_worker("w1", 2, 30.0)
    store.journal.worker_seen("w1", {"claimed": 3})
    before = _row(store, "w1")
    here = this_process()
    assert (before["pid"], before["pid_start"], before["boot_id"]) == (
        here.pid, here.pid_start, here.boot_id,
    )  # fmt: skip
    with pytest.raises(NameInUse, match=r"worker name 'w1' is in use by a live worker .*--name"):
        store.journal.register_worker("w1", 4, 30.0)
    assert _row(store, "w1") == before


def test_a_dead_or_stopped_holder_frees_its_name(store: Store) -> None:
    store.journal.register_worker("w1", 2, 30.0)
    pid, ticks = _dead_pid()
    _set(store, "w1", pid=pid, pid_start=ticks)  # that process has exited
    store.journal.register_worker("w1", 3, 30.0)
    assert _row(store, "w1")["slots"] == 3
    _set(store, "w1", pid_start=this_process().pid_start + 1)  # type: ignore[operator]
    store.journal.register_worker("w1", 4, 30.0)  # this pid, but a later process's start time
    assert _row(store, "w1")["slots"] == 4
    _set(store, "w1", boot_id="another-boot")  # the host rebooted since
    store.journal.register_worker("w1", 5, 30.0)
    store.journal.worker_seen("w1", {}, stopped=True)
    store.journal.register_worker("w1", 6, 30.0)
    row = _row(store, "w1")
    assert (row["slots"], row["stopped_at"]) == (6, None)


def test_a_holder_on_another_host_is_live_while_its_heartbeat_is_fresh(store: Store) -> None:
    store.journal.register_worker("w1", 2, 30.0)
    assert socket.gethostname() != "elsewhere"
    _set(store, "w1", hostname="elsewhere", lease=600.0)
    with pytest.raises(NameInUse, match="on elsewhere"):
        store.journal.register_worker("w1", 2, 1.0)  # its own lease counts, not ours
    now = store.queries.now()
    _set(store, "w1", last_seen=now - 700)
    store.journal.register_worker("w1", 3, 30.0)
    assert _row(store, "w1")["hostname"] == socket.gethostname()


def test_a_row_from_before_the_liveness_columns_is_judged_by_its_heartbeat(store: Store) -> None:
    store.journal.register_worker("w1", 2, 30.0)
    _set(store, "w1", boot_id=None, pid_start=None, lease=None)
    with pytest.raises(NameInUse):
        store.journal.register_worker("w1", 2, 30.0)
    _set(store, "w1", last_seen=store.queries.now() - 31)
    store.journal.register_worker("w1", 3, 30.0)
    assert _row(store, "w1")["slots"] == 3


def test_a_killed_worker_not_yet_reaped_holds_no_name(store: Store) -> None:
    # A worker SIGKILLed under a parent that has not waited for it yet (a
    # subreaper, a supervisor script) is a zombie: gone, though its pid and
    # start time are still in /proc.
    child = subprocess.Popen(["sleep", "30"])
    try:
        ticks = start_ticks(child.pid)
        store.journal.register_worker("w1", 2, 30.0)
        _set(store, "w1", pid=child.pid, pid_start=ticks)
        child.kill()
        with open(f"/proc/{child.pid}/stat", encoding="ascii") as fh:
            while fh.read().rpartition(")")[2].split()[0] != "Z":
                fh.seek(0)
        store.journal.register_worker("w1", 4, 30.0)  # not refused
    finally:
        child.wait()
