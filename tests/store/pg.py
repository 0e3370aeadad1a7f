"""PostgreSQL for the tests: the machine's server, or a throwaway one.

The suite uses the server at ``$STOCKADE_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/test``) when it answers; otherwise it
starts a throwaway cluster from the installed binaries (``initdb`` and
``pg_ctl``, as the ``postgres`` user when run as root) and removes it at the
end. Tests that restart the database always get a throwaway cluster, so
they never touch a server someone else uses.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["DEFAULT_URL", "Cluster", "reachable", "schema_url", "throwaway"]

DEFAULT_URL = os.environ.get("STOCKADE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def reachable(url: str, timeout: float = 2.0) -> bool:
    """Whether a PostgreSQL server answers at ``url``."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=int(max(1, timeout))) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: cannot start a test server")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """A throwaway PostgreSQL cluster in a temporary directory."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="stockade-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres = os.geteuid() == 0

    def _run(self, *argv: str) -> None:
        cmd = list(argv)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def init(self) -> Cluster:
        if self._as_postgres:
            shutil.chown(self.dir, "postgres")
        self._run(_binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")
        self.start()
        return self

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
                  str(self.dir / "log"), "-w", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the server (closing every connection), wait, start it again."""
        self.stop("immediate")
        time.sleep(down_for)
        self.start()

    def remove(self) -> None:
        with suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def throwaway() -> Iterator[Cluster]:
    """A fresh cluster for the duration of the block."""
    cluster = Cluster().init()
    try:
        yield cluster
    finally:
        cluster.remove()


@contextmanager
def schema_url(base: str) -> Iterator[str]:
    """A fresh schema in ``base``'s database, as a URL whose connections use it."""
    import psycopg

    name = f"stk_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{base}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")
