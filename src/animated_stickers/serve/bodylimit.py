"""ASGI middleware: refuse request bodies over a byte limit with 413 JSON, before any parsing.

The body is read into memory (bounded by the limit) and replayed to the app, so an oversized upload
never reaches the multipart parser or the disk. An oversized body is drained (up to a cap) before the
413 is sent: a server that answers and closes mid-upload makes many clients report a broken pipe
instead of the 413. A client that stops sending mid-body for `read_timeout_s` gets 408 and is dropped,
so half-sent uploads cannot hold connections open forever (uvicorn's own limits and the header-read
deadline of headertimeout.py: `UVICORN_LIMITS`).
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .headertimeout import HEADER_TIMEOUT_S, HeaderTimeoutProtocol, header_timeout_protocol

DRAIN_FACTOR = 8  # read at most this many times the limit before giving up on a polite 413
READ_TIMEOUT_S = 30.0  # longest pause between two chunks of a request body
# uvicorn.Config/run options for both servers: idle keep-alive connections close after 5 s, a request
# line + headers over 64 KB is refused (h11) instead of buffered, and one whose headers take longer than
# HEADER_TIMEOUT_S is dropped (headertimeout.py; `uvicorn_limits` sets another deadline).
UVICORN_LIMITS = {"timeout_keep_alive": 5, "h11_max_incomplete_event_size": 64 * 1024, "http": HeaderTimeoutProtocol}


def uvicorn_limits(header_timeout_s: float = HEADER_TIMEOUT_S) -> dict:
    """UVICORN_LIMITS with a header-read deadline of `header_timeout_s` seconds."""
    return {**UVICORN_LIMITS, "http": header_timeout_protocol(header_timeout_s)}


class BodyLimitMiddleware:
    """Buffer POST/PUT/PATCH bodies up to `max_bytes`; larger ones get 413 `{"error": ...}`."""

    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        chunks: list[bytes] = []
        total = 0
        more = True
        too_big = declared is not None and declared.isdigit() and int(declared) > self.max_bytes
        while more:
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout_s)
            except TimeoutError:
                await _send_json(send, 408, {"error": f"request body stalled: no data for {self.read_timeout_s:g} s; "
                                                      "expected the whole upload to arrive"})
                return
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            total += len(body)
            more = message.get("more_body", False)
            if total > self.max_bytes:
                too_big = True
            if too_big:
                if total > DRAIN_FACTOR * self.max_bytes:
                    break
                continue
            chunks.append(body)
        if too_big:
            known = declared is not None and declared.isdigit()
            size = f"{int(declared)} bytes" if known else f"over {self.max_bytes} bytes"
            await _send_json(send, 413, {"error": f"request body is {size}; expected at most "
                                                  f"{self.max_bytes} bytes (image + form fields)"})
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for a disconnect like the server would

        await self.app(scope, replay, send)


async def _send_json(send: Send, status: int, payload: dict) -> None:
    data = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})
