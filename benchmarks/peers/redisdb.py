"""A peer's own Redis database: what it holds, and emptying it."""

from __future__ import annotations

from benchmarks.peers import Peer, redis_db
from benchmarks.peers.cpu import redis_servers


def flush(db: int) -> None:
    """Empty database ``db``: the peer's queues, results and worker keys."""
    import redis

    with redis.Redis.from_url(redis_db(db)) as client:
        client.flushdb()


def keys(db: int) -> int:
    """How many keys database ``db`` holds."""
    import redis

    with redis.Redis.from_url(redis_db(db)) as client:
        return int(client.dbsize())


def persistence() -> str:
    """The server's persistence settings, as the notes print them."""
    import redis

    with redis.Redis.from_url(redis_db(0)) as client:
        save = client.config_get("save").get("save", "?")
        aof = client.config_get("appendonly").get("appendonly", "?")
    return f"Redis save {save!r}, appendonly {aof}"


class RedisPeer(Peer):
    """A peer on a Redis database of its own, flushed at the end."""

    #: Its database number on the benchmark's Redis server.
    db: int

    @property
    def url(self) -> str:
        return redis_db(self.db)

    def servers(self) -> list[int]:
        return redis_servers()

    def close(self) -> None:
        """Close the benchmark's own client, if it made one."""

    def cleanup(self) -> None:
        self.close()
        flush(self.db)
