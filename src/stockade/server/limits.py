"""ASGI middleware: refuse oversized bodies (413), URLs holding a NUL (422) and new
requests while draining (503).

Both work on the raw ASGI messages so that a body is refused before it is
read whole: a declared ``Content-Length`` over the limit is refused at
once, and a chunked body is counted as it arrives.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BodyLimit", "Drain", "NoNul"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """Send a whole JSON response."""
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Answer 413 to a request whose body is over ``max_body`` bytes."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                await send_json(send, 413, {"error": "request body too large"})
                return
        seen = 0
        over = False
        answered = False

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    over = True
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            # The app may turn the read error into its own 4xx: answer 413 instead.
            nonlocal answered
            if not over:
                await send(message)
            elif not answered:
                answered = True
                await send_json(send, 413, {"error": "request body too large"})

        try:
            await self.app(scope, counted, guarded)
        except _TooLarge:
            if not answered:
                await send_json(send, 413, {"error": "request body too large"})


class NoNul:
    """Answer 422 to a request whose path or query string holds a NUL (``%00``):
    no job id, name or filter has one, and PostgreSQL cannot take one in text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"")
            if "\0" in scope.get("path", "") or b"%00" in query or b"\0" in query:
                error = "the URL holds a NUL character (%00): no id, name or filter has one"
                await send_json(send, 422, {"error": error, "field": "url"})
                return
        await self.app(scope, receive, send)


class Drain:
    """While ``draining()`` is true, answer new requests 503 with ``Retry-After``
    (all but ``/health``, which says ``down`` itself)."""

    def __init__(self, app: ASGIApp, draining: Callable[[], bool], retry_after: int = 5) -> None:
        self.app = app
        self.draining = draining
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.draining() and scope.get("path") != "/health":
            headers = [(b"retry-after", str(self.retry_after).encode())]
            await send_json(send, 503, {"error": "shutting down"}, tuple(headers))
            return
        await self.app(scope, receive, send)
