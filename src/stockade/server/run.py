"""Run the service: uvicorn and the embedded worker in one event loop.

On the first SIGTERM or SIGINT the server starts draining: every new
request but ``/health`` is answered 503 with ``Retry-After``, log streams
end with a ``shutdown`` event, and the embedded worker stops claiming and
lets its running jobs finish for up to its drain timeout (a second signal
stops them at once, as `stockade worker` does). Then uvicorn stops,
finishing the requests it is serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from stockade.engine.notifier import send_loop
from stockade.engine.worker import Worker, WorkerOptions
from stockade.errors import ListenError, StoreError
from stockade.sdnotify import Notifier
from stockade.server.app import create_app
from stockade.server.service import Service
from stockade.store import Store

__all__ = ["ServeOptions", "listen", "serve"]

log = logging.getLogger("stockade.server")


@dataclass
class ServeOptions:
    """How `stockade serve` runs."""

    host: str = "127.0.0.1"
    port: int = 8470
    slots: int = 1
    drain_timeout: float = 30.0
    #: The bound socket (:func:`listen`); uvicorn binds its own without one.
    sock: socket.socket | None = None
    #: The caller has set up logging for uvicorn's loggers too (JSON logs):
    #: uvicorn must not install its own handlers over them.
    own_logging: bool = False


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (as uvicorn binds one), so a busy port
    is known before the server says it is serving; :class:`ListenError` if
    the address cannot be used."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = "; stop what uses it or give another --port" if exc.errno == errno.EADDRINUSE else ""
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from exc
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ours drains first."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(service: Service, worker_store: Store | None, options: ServeOptions) -> int:
    systemd = Notifier.from_environment()  # before any job starts: jobs must not inherit it
    config = uvicorn.Config(
        create_app(service), host=options.host, port=options.port, log_level="warning",
        access_log=False, timeout_graceful_shutdown=5, lifespan="off",
        log_config=None if options.own_logging else uvicorn.config.LOGGING_CONFIG,
    )  # fmt: skip
    server = _Server(config)
    worker: Worker | None = None
    if worker_store is not None and options.slots > 0:
        worker = Worker(
            worker_store,
            WorkerOptions(slots=options.slots, drain_timeout=options.drain_timeout,
                          lease=service.lease, handle_signals=False,
                          data_dir=service.data_dir, chores=False),
        )  # fmt: skip
        service.worker.slots = options.slots
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        if service.draining:
            log.warning("second signal: stopping running jobs now")
        else:
            log.warning("draining: refusing new requests")
            systemd.notify("STOPPING=1", "STATUS=draining")
        service.draining = True
        service.wakeups.wake_all()  # log streams end now, not at their next poll
        stop.set()
        if worker is not None:
            worker.request_stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    if service.store.db.dialect == "postgresql":
        service.wakeups.start(service.store.db.url, loop)
    serving = loop.create_task(server.serve([options.sock] if options.sock else None))
    ready = loop.create_task(_tell_systemd(server, systemd))
    working = loop.create_task(worker.run()) if worker is not None else None
    # Without an embedded worker (--slots 0), the server sends the notifications itself.
    sending = loop.create_task(_send(service)) if worker is None else None
    chores = loop.create_task(_chores(service, stop))
    service.worker.alive = working is not None
    if working is not None:
        working.add_done_callback(lambda _: setattr(service.worker, "alive", False))
    status = 0
    try:
        stopping = loop.create_task(stop.wait())
        await asyncio.wait([stopping, serving], return_when=asyncio.FIRST_COMPLETED)
        if serving.done():  # uvicorn gave up (e.g. the port is taken)
            status = 1
            stopping.cancel()
            on_signal()
        if working is not None:
            await working
    finally:
        service.worker.alive = False
        for task in filter(None, (ready, sending, chores)):
            task.cancel()
        server.should_exit = True
        with contextlib.suppress(SystemExit):
            await serving
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.warning("stopped")
    return status


async def _send(service: Service) -> None:
    """Send the store's due job-end notifications (see :mod:`stockade.engine.notifier`)."""
    await send_loop(service.store.outbox, asyncio.to_thread, 1.0)


async def _chores(service: Service, stop: asyncio.Event) -> None:
    """Fire due schedules and apply retention until the server drains (the
    embedded worker leaves these to this task)."""
    from stockade.engine.housekeeping import FIRE_EVERY, Chores

    chores = Chores(service.store, data_dir=service.data_dir)
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        try:
            await loop.run_in_executor(None, chores.run)
        except StoreError as exc:
            log.debug("housekeeping: %s", exc.message)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), FIRE_EVERY)


async def _tell_systemd(server: uvicorn.Server, systemd: Notifier) -> None:
    """Ready once uvicorn listens; then the watchdog's pings, if asked for
    (see :mod:`stockade.sdnotify`; nothing without ``$NOTIFY_SOCKET``)."""
    while not server.started:
        if server.should_exit:
            return
        await asyncio.sleep(0.05)
    systemd.notify("READY=1", "STATUS=serving")
    await systemd.keep_alive()


def serve(service: Service, worker_store: Store | None, options: ServeOptions) -> int:
    """Serve until a signal has drained everything; the exit status."""
    from stockade.sandbox import fence
    from stockade.sandbox.proctree import enable_subreaper

    enable_subreaper()
    fence.start()  # the jobs of its runs and its worker die with the server
    service.sq.ensure_tables()
    from stockade.engine.housekeeping import define

    define(service.store, service.config)
    try:
        return asyncio.run(_serve(service, worker_store, options))
    finally:
        service.close()
