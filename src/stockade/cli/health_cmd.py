"""``stockade health``: ask a running server's /health, for liveness probes.

Standard library only (a probe should start fast). Exit 0 when the server
answers ``ok`` or ``degraded``, 1 when it says ``down``, answers with an
error, or cannot be reached.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import click

__all__ = ["health_command"]


@click.command("health", short_help="Check a server's /health (exit 0 healthy, 1 not).")
@click.option(
    "--url", default="http://127.0.0.1:8470", show_default=True, envvar="STOCKADE_URL",
    help="The server's base URL [$STOCKADE_URL].",
)  # fmt: skip
@click.option("--timeout", default=5.0, show_default=True, help="Seconds to wait for an answer.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing; only the exit status.")
def health_command(url: str, timeout: float, quiet: bool) -> int:
    """Print the server's health status and checks."""
    target = url.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read())
        except ValueError:
            body = {"status": "down", "error": f"HTTP {exc.code}"}
    except (OSError, ValueError) as exc:
        body = {"status": "down", "error": f"cannot reach {target}: {exc}"}
    status = body.get("status", "down") if isinstance(body, dict) else "down"
    if not quiet:
        click.echo(json.dumps(body, indent=2))
    return 0 if status in ("ok", "degraded") else 1
