"""``stockade serve`` (the HTTP service) and ``stockade token create``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from stockade.cli.logsetup import log_format_option
from stockade.cli.store_opts import open_store_from, store_command
from stockade.cli.values import duration
from stockade.errors import UsageError

__all__ = ["serve_command", "token_group"]


@click.command("serve", short_help="Serve the HTTP API, webhooks, health and metrics.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8470, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--slots", "-s", default=1, show_default=True, type=click.IntRange(min=0),
    help="Embedded worker slots; 0 runs none (a fleet of `stockade worker`s serves).",
)  # fmt: skip
@click.option("--config", "-c", "config", metavar="FILE", help="stockade.yaml [./stockade.yaml].")
@click.option(
    "--drain-timeout", metavar="DURATION", default="30s", show_default=True,
    help="On SIGTERM, how long running jobs may finish.",
)  # fmt: skip
@click.option("--verbose", "-v", is_flag=True, help="Also log every job's end and worker events.")
@log_format_option
@store_command
def serve_command(**opts: Any) -> int:
    """Serve the job API under /api/v1, webhooks under /hooks, /health and /metrics.

    Every endpoint but /health needs a bearer token: $STOCKADE_TOKEN, or one
    whose hash is under `server.tokens` (see `stockade token create`).
    SIGTERM drains: new requests get 503, running jobs finish; a second
    SIGTERM kills them at once.
    """
    from stockade.server.auth import TokenSet
    from stockade.server.run import ServeOptions, listen, serve
    from stockade.server.service import Service

    config, base = _config(opts["config"])
    tokens = TokenSet.load(config.server, base)
    if not tokens:
        raise UsageError(
            "no API token: set STOCKADE_TOKEN or list hashes under server.tokens "
            "(`stockade token create`)"
        )
    drain = duration(opts["drain_timeout"], "--drain-timeout")
    sock = listen(opts["host"], opts["port"])  # a busy port fails here, before anything starts
    try:
        options = ServeOptions(
            host=opts["host"], port=sock.getsockname()[1], slots=opts["slots"],
            drain_timeout=drain, sock=sock, own_logging=opts["log_format"] == "json",
        )  # fmt: skip
        listening = _logging(opts["verbose"], opts["log_format"])
        store = open_store_from(opts)
        worker_store = open_store_from(opts) if options.slots else None
        service = Service(store, config, tokens, data_dir=opts.get("data_dir"))
        listening(f"stockade: serving on http://{options.host}:{options.port}")
        try:
            return serve(service, worker_store, options)
        finally:
            store.close()
    finally:
        sock.close()


def _config(given: str | None) -> tuple[Any, Any]:
    from pathlib import Path

    from stockade.config import find_config, load
    from stockade.spec import Config

    path = Path(given) if given else find_config(Path.cwd())
    if given and not Path(given).is_file():
        raise UsageError(f"config file {given!r} not found")
    if path is None:
        return Config(), None
    return load(path), path.parent


def _logging(verbose: bool, log_format: str) -> Callable[[str], None]:
    """Set up the service's logs; how to say where it listens (a plain line
    on stderr, or a JSON line like every other)."""
    import logging

    from stockade.cli.logsetup import setup_logging

    level = logging.DEBUG if verbose else logging.WARNING
    if log_format != "json":
        setup_logging("stockade serve: ", level, log_format)
        return lambda line: click.echo(line, err=True)
    # JSON: uvicorn's own lines too, so every line on stderr parses.
    setup_logging("", level, log_format, ("stockade", "uvicorn"))
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    announce = logging.getLogger("stockade.server.listen")
    announce.setLevel(logging.INFO)
    return announce.info


@click.group("token", short_help="Make API tokens for `stockade serve`.")
def token_group() -> None:
    """API tokens: only their hashes are kept."""


@token_group.command("create")
def token_create() -> None:
    """Print a new token and the hash to put under `server.tokens`."""
    from stockade.server.auth import hash_token, new_token

    token = new_token()
    click.echo(f"token: {token}")
    click.echo(f"hash:  {hash_token(token)}")
    click.echo("Keep the token secret; put only the hash in stockade.yaml.", err=True)
