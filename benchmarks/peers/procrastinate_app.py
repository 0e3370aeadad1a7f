"""The procrastinate app the benchmark's procrastinate worker loads (the
PostgreSQL database in ``STOCKADE_PEER_PG``)."""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector

from benchmarks.peers.effect import run_job

app = App(connector=PsycopgConnector(conninfo=os.environ.get("STOCKADE_PEER_PG", "")))
app.task(name="true", queue="stockade-bench")(run_job)
