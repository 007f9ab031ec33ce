"""uvicorn's HTTP protocol with a deadline on a request's headers.

uvicorn times a connection out only between requests (``timeout_keep_alive``, after an
answer): a client that opens a connection and sends nothing, or sends a request line and then
a header byte every few seconds, holds its slot in the worker for ever, and a few hundred such
clients hold them all (a "slowloris"). The body has its own guard in the app
(:class:`churnlens.serving.api.RequestGuard`); headers never reach the app, so their deadline
lives here: a request's headers must be complete ``read_timeout`` seconds (``[api]``) after
the connection opened or the request's first byte arrived, else the server answers 408 and
closes the connection.

``churnlens serve`` passes this class to uvicorn (``http=``) and the deadline in the
environment (:data:`HEADER_TIMEOUT_ENV`), which worker processes inherit.
"""

from __future__ import annotations

import asyncio
import os

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Seconds a request's headers may take; set by ``churnlens serve`` from ``[api] read_timeout``.
HEADER_TIMEOUT_ENV = "CHURNLENS_HEADER_TIMEOUT"
DEFAULT_HEADER_TIMEOUT_S = 10.0

_TIMEOUT_BODY = b'{"detail":[{"loc":["headers"],"msg":"the request headers came too slowly","type":"header_timeout"}]}'
_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n" % len(_TIMEOUT_BODY)
) + _TIMEOUT_BODY


def header_timeout() -> float:
    """The headers' deadline in seconds (:data:`HEADER_TIMEOUT_ENV`, else 10)."""
    try:
        value = float(os.environ.get(HEADER_TIMEOUT_ENV, DEFAULT_HEADER_TIMEOUT_S))
    except ValueError:
        return DEFAULT_HEADER_TIMEOUT_S
    return value if 0 < value < float("inf") else DEFAULT_HEADER_TIMEOUT_S


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` that drops a connection whose request headers are not complete in time."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._header_deadline = header_timeout()
        self._header_timer: asyncio.TimerHandle | None = None

    def _start_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self._header_deadline, self._headers_too_slow)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_TIMEOUT_ANSWER)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer()  # a connection that never sends a byte is timed too

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_header_timer()  # the next request of a kept-alive connection

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)
