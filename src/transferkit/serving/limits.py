"""The request body cap, enforced before the body is read: an ASGI middleware."""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from starlette.exceptions import HTTPException

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def too_large_message(max_bytes: int) -> str:
    return (f"request body over the {max_bytes / 2**20:g} MB limit; send smaller or fewer files per request "
            "(the server's --max-body-mb sets the limit)")


class BodyTooLarge(HTTPException):
    """Raised from `receive` once the streamed body passes the limit: an HTTP 413, so whichever
    layer reads the body (the form parser, FastAPI's body reader) answers it as such."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, too_large_message(max_bytes))


class BodyLimit:
    """Answers 413 to a request whose body is over `max_bytes`: at once from its Content-Length,
    or, for a chunked body (no length), as soon as the bytes received pass the limit, so an
    oversized upload is never held in memory whole."""

    def __init__(self, app: Callable, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _json(send, 400, "invalid Content-Length header; send the body's size in bytes")
                return
            if declared > self.max_bytes:
                await _json(send, 413, too_large_message(self.max_bytes))
                return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except BodyTooLarge:
            if not started:
                await _json(send, 413, too_large_message(self.max_bytes))


async def _json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
