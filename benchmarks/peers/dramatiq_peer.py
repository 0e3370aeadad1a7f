"""Dramatiq 2: Redis broker, 2 worker processes of 1 thread each; with its
default prefetch (2 messages per process) or ``dramatiq_queue_prefetch=16``."""

from __future__ import annotations

from benchmarks.peers import BIN
from benchmarks.peers.effect import PREFIX
from benchmarks.peers.redisdb import RedisPeer

QUEUE = "stockade-bench"


class DramatiqPeer(RedisPeer):
    db = 14
    name = "dramatiq"
    label = "Dramatiq 2 + Redis (2 procs x 1 thread)"
    modules = ("dramatiq", "redis")
    #: ``dramatiq_queue_prefetch``; 0 is Dramatiq's default (2 x threads).
    prefetch = 0
    notes = (
        "stores no result (no results middleware); submits one enqueue (a Lua "
        "script) per message; a worker with nothing to fetch sleeps 5 ms doubling up "
        "to 1 s (worker_timeout), also while its prefetch is full"
    )

    def start(self) -> None:
        from dramatiq.brokers.redis import RedisBroker

        url = self.url
        self.broker = RedisBroker(url=url, namespace=PREFIX.rstrip(":"))
        env = {"STOCKADE_PEER_REDIS": url}
        if self.prefetch:
            env["dramatiq_queue_prefetch"] = str(self.prefetch)
        self.spawn(
            [str(BIN / "dramatiq"), "benchmarks.peers.dramatiq_app", "--processes", "2",
             "--threads", "1", "--queues", QUEUE],
            env,
        )  # fmt: skip

    def submit(self, first: int, count: int) -> None:
        from dramatiq import Message

        records = str(self.effects)
        for i in range(first, first + count):
            self.broker.enqueue(Message(
                queue_name=QUEUE, actor_name="true", args=(records, i), kwargs={}, options={},
            ))  # fmt: skip

    def close(self) -> None:
        if hasattr(self, "broker"):
            self.broker.close()


class TunedDramatiqPeer(DramatiqPeer):
    name = "dramatiq16"
    label = "Dramatiq 2 + Redis, prefetch 16"
    prefetch = 16
