"""The Celery app the benchmark's Celery workers load (broker and result
backend: the Redis database in ``STOCKADE_PEER_REDIS``, keys under ``PREFIX``)."""

from __future__ import annotations

import os

from celery import Celery

from benchmarks.peers.effect import PREFIX, run_job

app = Celery("stockade_bench", broker=os.environ["STOCKADE_PEER_REDIS"],
             backend=os.environ["STOCKADE_PEER_REDIS"])  # fmt: skip
app.conf.worker_hijack_root_logger = False
app.conf.broker_transport_options = {"global_keyprefix": PREFIX}
app.conf.result_backend_transport_options = {"global_keyprefix": PREFIX}
app.task(name="stockade_bench.true")(run_job)
