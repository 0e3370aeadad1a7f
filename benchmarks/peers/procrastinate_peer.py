"""procrastinate 3: one worker process with concurrency 2, on a PostgreSQL
database of its own (its schema applied, the database dropped at the end)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from benchmarks.peers import BIN, PG, Peer


class ProcrastinatePeer(Peer):
    name = "procrastinate"
    label = "procrastinate 3 + PostgreSQL (concurrency 2)"
    modules = ("procrastinate", "psycopg")
    notes = (
        "keeps every job's row and status in PostgreSQL; submits with batch_defer "
        "(one INSERT); the worker is woken by LISTEN/NOTIFY, and polls every 5 s"
    )

    def start(self) -> None:
        import psycopg
        from procrastinate import App, PsycopgConnector

        self.database = f"bench_procrastinate_{self.tag}"
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.database}")
        url = urlunsplit(urlsplit(PG)._replace(path=f"/{self.database}"))
        self.app = App(connector=PsycopgConnector(conninfo=url))
        self.app.open()
        self.app.schema_manager.apply_schema()
        self.spawn(
            [str(BIN / "procrastinate"), "--app", "benchmarks.peers.procrastinate_app.app",
             "--log-level", "warning", "worker", "--concurrency", "2"],
            {"STOCKADE_PEER_PG": url},
        )  # fmt: skip

    def submit(self, first: int, count: int) -> None:
        records = str(self.effects)
        self.app.configure_task("true", queue="stockade-bench").batch_defer(
            *({"records": records, "index": i} for i in range(first, first + count))
        )

    def cleanup(self) -> None:
        import psycopg

        if hasattr(self, "app"):
            self.app.close()
        if hasattr(self, "database"):
            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
