"""Send the outbox's due notifications (see :mod:`stockade.store.outbox`).

Every worker runs :func:`send_loop` next to its housekeeping: every few
seconds it claims up to :data:`BATCH` due notifications and tries each once,
concurrently, then records the try. A failed try is due again after the
notification's backoff (:func:`~stockade.runner.policy.backoff_delay`, the
job retries' own policy), until its ``max_attempts`` are spent.

* A **webhook** is one ``POST`` of the JSON summary with the standard
  library's HTTP client (no new dependency; redirects are not followed: a
  2xx answer is the only success). With a ``secret``, the header
  ``X-Stockade-Signature-256: sha256=HEX`` is the HMAC-SHA256 of the exact
  body under the secret's value, read from its source at each try and never
  stored or logged.
* A **command** is run from its argv (no shell), the summary on stdin,
  with only ``PATH`` in its environment; exit status 0 is success.

A try's time limit is the notification's ``timeout`` (at most
:data:`~stockade.spec.notify.MAX_TIMEOUT`); the claim's lease outlasts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from stockade.errors import StockadeError, StoreError
from stockade.runner.policy import backoff_delay
from stockade.spec.notify import MAX_TIMEOUT, NotifyRetry
from stockade.spec.secrets import SecretSpec
from stockade.store.outbox import Delivery, Outbox

__all__ = ["BATCH", "LEASE", "body_bytes", "send_loop", "send_once", "sign"]

log = logging.getLogger("stockade.notify")

#: Notifications one sender claims at a time.
BATCH = 16
#: How long a claim holds its notifications: longer than any try.
LEASE = MAX_TIMEOUT * 2
_ERROR_MAX = 200

Call = Callable[..., Awaitable[Any]]


def body_bytes(body: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact JSON, keys sorted."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign(key: str, data: bytes) -> str:
    """The ``X-Stockade-Signature-256`` value of ``data`` under ``key``."""
    return "sha256=" + hmac.new(key.encode(), data, hashlib.sha256).hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is an answer like any other non-2xx one


_OPENER = urllib.request.build_opener(_NoRedirect)


def _post(url: str, data: bytes, headers: dict[str, str], timeout: float) -> tuple[int | None, str]:
    """POST ``data``; the status (``None``: no answer) and an error ('' if 2xx)."""
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, str(reason)[:_ERROR_MAX]
    return status, "" if 200 <= status < 300 else f"HTTP {status}"


async def _webhook(delivery: Delivery, data: bytes) -> tuple[int | None, str]:
    spec = delivery.spec
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "stockade-notify",
        "X-Stockade-Event": str(delivery.body.get("event", "job.ended")),
        "X-Stockade-Delivery": str(delivery.body.get("delivery", "")),
    }
    if spec.get("secret"):
        try:
            key = SecretSpec.model_validate(spec["secret"]).read("notify")
        except (StockadeError, ValueError) as exc:
            return None, f"secret unavailable: {exc}"[:_ERROR_MAX]
        headers["X-Stockade-Signature-256"] = sign(key, data)
    timeout = float(spec.get("timeout", 10.0))
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, _post, spec["url"], data, headers, timeout)


async def _command(delivery: Delivery, data: bytes) -> tuple[int | None, str]:
    argv = [str(arg) for arg in delivery.spec["command"]]
    timeout = float(delivery.spec.get("timeout", 10.0))
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, start_new_session=True,
            env={"PATH": os.environ.get("PATH", os.defpath)},
        )  # fmt: skip
    except OSError as exc:
        return None, f"cannot run {argv[0]}: {exc.strerror}"
    try:
        _, err = await asyncio.wait_for(proc.communicate(data), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return None, f"timed out after {timeout:g}s"
    code = proc.returncode
    if code == 0:
        return 0, ""
    text = err.decode(errors="replace").strip().splitlines()
    return code, (f"exit {code}" + (f": {text[-1]}" if text else ""))[:_ERROR_MAX]


async def _try(outbox: Outbox, call: Call, delivery: Delivery) -> None:
    data = body_bytes(delivery.body)
    started = time.time()
    if delivery.kind == "webhook":
        status, error = await _webhook(delivery, data)
    else:
        status, error = await _command(delivery, data)
    record: dict[str, Any] = {"time": started, "status": status, "error": error or None}
    retry = NotifyRetry.model_validate(delivery.spec.get("retry", {}))
    retry_in = None
    if error and delivery.tries < retry.max_attempts:
        retry_in = backoff_delay(delivery.tries, initial=retry.initial,
                                 multiplier=retry.multiplier, cap=retry.max)  # fmt: skip
    kept = await call(outbox.record, delivery, record, delivered=not error, retry_in=retry_in)
    if error:
        log.warning(
            "notification %s of job %s: try %d failed: %s%s", delivery.id, delivery.job_id,
            delivery.tries, error, "" if retry_in is not None else " (given up)",
        )  # fmt: skip
    elif not kept:
        log.warning("notification %s: sent after its claim lapsed", delivery.id)


async def send_once(outbox: Outbox, call: Call, limit: int = BATCH) -> int:
    """Claim due notifications and try each once (concurrently); how many."""
    claimed: list[Delivery] = await call(outbox.claim, limit, LEASE)
    if claimed:
        await asyncio.gather(*(_try(outbox, call, d) for d in claimed))
    return len(claimed)


async def send_loop(outbox: Outbox, call: Call, every: float) -> None:
    """:func:`send_once` every ``every`` seconds (at once again while busy), until
    cancelled; the first round after ``every``, not while the worker starts."""
    await asyncio.sleep(every)
    while True:
        try:
            sent = await send_once(outbox, call)
        except StoreError as exc:
            log.debug("notifications: %s", exc.message)
            sent = 0
        if sent < BATCH:
            await asyncio.sleep(every)
