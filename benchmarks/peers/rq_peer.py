"""RQ: 2 ``SimpleWorker`` processes (each runs its jobs in itself, no fork
per job) on one Redis queue."""

from __future__ import annotations

from benchmarks.peers import BIN
from benchmarks.peers.redisdb import RedisPeer

QUEUE = "stockade-bench"


class RqPeer(RedisPeer):
    db = 13
    name = "rq"
    label = "RQ + Redis (2 SimpleWorkers)"
    modules = ("rq", "redis")
    notes = (
        "stores every result in Redis (result_ttl 500 s); submits with "
        "enqueue_many (one pipeline); workers block on BLPOP, woken by new work"
    )

    def start(self) -> None:
        from redis import Redis
        from rq import Queue

        url = self.url
        self.redis = Redis.from_url(url)
        self.queue = Queue(QUEUE, connection=self.redis)
        for _ in range(2):
            self.spawn([str(BIN / "rq"), "worker", "-w", "rq.worker.SimpleWorker", "-u", url,
                        "-q", QUEUE])  # fmt: skip

    def submit(self, first: int, count: int) -> None:
        from rq import Queue

        records = str(self.effects)
        self.queue.enqueue_many([
            Queue.prepare_data("benchmarks.peers.effect.run_job", args=(records, i))
            for i in range(first, first + count)
        ])  # fmt: skip

    def close(self) -> None:
        if hasattr(self, "redis"):
            self.redis.close()
