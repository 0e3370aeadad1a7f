"""Celery 5: Redis broker and result backend, ``worker -P prefork -c 2``."""

from __future__ import annotations

from benchmarks.peers import BIN
from benchmarks.peers.effect import PREFIX
from benchmarks.peers.redisdb import RedisPeer

QUEUE = "stockade-bench"


class CeleryPeer(RedisPeer):
    db = 15
    name = "celery"
    label = "Celery 5 + Redis (prefork -c2)"
    modules = ("celery", "redis")
    notes = (
        "stores every result in Redis (result backend on); submits a group "
        "(one message each); workers block on BRPOP (1 s timeout), woken by new work"
    )

    def start(self) -> None:
        from celery import Celery

        url = self.url
        self.app = Celery("stockade_bench", broker=url, backend=url)
        self.app.conf.broker_transport_options = {"global_keyprefix": PREFIX}
        self.app.conf.result_backend_transport_options = {"global_keyprefix": PREFIX}
        self.spawn(
            [str(BIN / "celery"), "-A", "benchmarks.peers.celery_app", "worker", "-c", "2",
             "-P", "prefork", "--loglevel=warning", "-Q", QUEUE, "--without-gossip",
             "--without-mingle"],
            {"STOCKADE_PEER_REDIS": url, "C_FORCE_ROOT": "1"},
        )  # fmt: skip

    def submit(self, first: int, count: int) -> None:
        from celery import group

        task = "stockade_bench.true"
        records = str(self.effects)
        group(
            self.app.signature(task, args=(records, i), queue=QUEUE)
            for i in range(first, first + count)
        ).apply_async()

    def close(self) -> None:
        if hasattr(self, "app"):
            self.app.close()
