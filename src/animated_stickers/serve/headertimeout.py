"""Drop connections whose request headers never finish (slowloris), for both servers.

uvicorn times out idle keep-alive connections (`timeout_keep_alive`) and BodyLimitMiddleware times out
stalled bodies, but nothing bounds the time a client may take to send its request line and headers: a
client that connects and drips one header byte every few seconds holds a connection (and a file
descriptor) forever. This h11 protocol gives every request `header_timeout_s` from its first byte (or
from the connection's start) to the end of its headers, and closes the connection when that runs out.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import HEADER_TIMEOUT_S


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on reading each request's headers."""

    header_timeout_s: float = HEADER_TIMEOUT_S
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a client that connects and sends nothing is a header that never finishes

    def data_received(self, data: bytes) -> None:
        if self._header_deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # h11 has parsed the whole request head
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # arms uvicorn's keep-alive timer for the idle gap
        self._disarm()

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("closing a connection whose request headers took over %g s", self.header_timeout_s)
            self.transport.close()


def header_timeout_protocol(seconds: float = HEADER_TIMEOUT_S) -> type[HeaderTimeoutProtocol]:
    """The protocol class (uvicorn's `http=`) with a header deadline of `seconds`."""
    if not seconds > 0:
        raise ValueError(f"header timeout {seconds!r}: expected a positive number of seconds")
    if seconds == HEADER_TIMEOUT_S:
        return HeaderTimeoutProtocol
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": float(seconds)})
