"""The Dramatiq actor the benchmark's Dramatiq workers load (broker: the
Redis database in ``STOCKADE_PEER_REDIS``)."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from benchmarks.peers.effect import PREFIX, run_job

dramatiq.set_broker(
    RedisBroker(url=os.environ["STOCKADE_PEER_REDIS"], namespace=PREFIX.rstrip(":"))
)
true = dramatiq.actor(run_job, actor_name="true", queue_name="stockade-bench", max_retries=0)
