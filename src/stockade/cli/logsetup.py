"""Where `stockade worker` and `stockade serve` log: stderr, as text or JSON lines.

Text (the default) is ``stockade worker: message``, for a person. JSON
(``--log-format json``) is one object per line for a log pipeline: ``time``
(ISO 8601, UTC), ``level``, ``logger``, ``message``, and, on lines about a
job, ``job_id``, ``attempt``, ``task`` and ``worker`` (see
:func:`stockade.engine.logfields.job_fields`); an exception adds ``exc_info``.
The JSON formatter is python-json-logger's, imported only when asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import logging

__all__ = ["LOG_FORMATS", "log_format_option", "setup_logging"]

LOG_FORMATS = ("text", "json")

log_format_option = click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="text",
    show_default=True,
    help="Log lines on stderr as text, or as JSON objects (one per line).",
)


def setup_logging(
    prefix: str, level: int, log_format: str, loggers: Iterable[str] = ("stockade",)
) -> logging.Handler:
    """Send ``loggers`` (and their children) at ``level`` to stderr in
    ``log_format``; the handler, for another logger to share it."""
    import logging
    import sys

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _json() if log_format == "json" else logging.Formatter(prefix + "%(message)s")
    )
    for name in loggers:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
    return handler


def _json() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
        json_ensure_ascii=False,
    )
