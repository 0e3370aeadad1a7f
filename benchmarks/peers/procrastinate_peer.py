"""procrastinate 3: one worker process with concurrency 2, on a PostgreSQL
database of its own (its schema applied, the database dropped at the end)."""

from __future__ import annotations

import contextlib

from benchmarks.peers import BIN, PG, Peer, pg_database
from benchmarks.peers.cpu import pg_backends


class ProcrastinatePeer(Peer):
    name = "procrastinate"
    label = "procrastinate 3 + PostgreSQL (concurrency 2)"
    modules = ("procrastinate", "psycopg")
    notes = (
        "keeps every job's row and status in PostgreSQL; submits with batch_defer "
        "(one INSERT); the worker is woken by LISTEN/NOTIFY, and polls every 5 s"
    )

    def start(self) -> None:
        from procrastinate import App, PsycopgConnector

        self.stack = contextlib.ExitStack()
        self.database, url = self.stack.enter_context(pg_database("bench_procrastinate"))
        self.app = App(connector=PsycopgConnector(conninfo=url))
        self.app.open()
        self.stack.callback(self.app.close)
        self.app.schema_manager.apply_schema()
        self.spawn(
            [str(BIN / "procrastinate"), "--app", "benchmarks.peers.procrastinate_app.app",
             "--log-level", "warning", "worker", "--concurrency", "2"],
            {"STOCKADE_PEER_PG": url},
        )  # fmt: skip

    def servers(self) -> list[int]:
        return pg_backends(PG, self.database)

    def submit(self, first: int, count: int) -> None:
        records = str(self.effects)
        self.app.configure_task("true", queue="stockade-bench").batch_defer(
            *({"records": records, "index": i} for i in range(first, first + count))
        )

    def cleanup(self) -> None:
        if hasattr(self, "stack"):
            self.stack.close()
