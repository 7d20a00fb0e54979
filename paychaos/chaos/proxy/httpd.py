"""A small HTTP/1.1 server for the control API: an ``asyncio.Protocol`` and ``httptools``.

The control API is a dozen JSON routes on loopback; a web framework's server
(aiohttp's cost the proxy process ~12 MiB of its ~43 MiB idle memory) is more
than it needs. This one does what the API's clients use, and no more:

- requests parsed by ``httptools`` (the C parser uvicorn uses): keep-alive,
  pipelining (answered in order), ``Content-Length`` and chunked bodies,
  ``Expect: 100-continue``, HTTP/1.0;
- routes: ``(method, "/proxies/{proxy}")`` patterns, path segments
  percent-decoded; 404 for an unknown path, 405 (with ``Allow``) for a known
  path and another method; ``HEAD`` wherever ``GET`` is routed;
- bounds: header block (:data:`MAX_HEADER_BYTES`) → 431, body
  (:data:`MAX_BODY_BYTES`) → 413, a request must arrive whole within
  :data:`READ_TIMEOUT_S` and an idle keep-alive connection is closed after
  :data:`IDLE_TIMEOUT_S` (Toxiproxy's server: 15 s and 60 s), a handler gets
  :data:`HANDLER_TIMEOUT_S` (Toxiproxy: 25 s, then 503), at most
  :data:`MAX_PIPELINED` requests queued per connection before it stops reading.

A handler returns a :class:`Response`; an exception it raises is the caller's
to turn into one (see ``api.py``), or else a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httptools

log = logging.getLogger("paychaos.chaos.proxy.httpd")

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
READ_TIMEOUT_S = 15.0
IDLE_TIMEOUT_S = 60.0
HANDLER_TIMEOUT_S = 25.0
MAX_PIPELINED = 16
LINGER_S = 1.0

JSON = "application/json"


@dataclass
class Request:
    """One parsed request. Header names are lower-case; ``match`` holds the path parameters."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    match: dict[str, str] = field(default_factory=dict)
    keep_alive: bool = True

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class Response:
    """What a handler answers. ``content_type`` None sends no ``Content-Type``."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        body = json.dumps(data, separators=(",", ":")).encode()
        return cls(status, body, JSON)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> Response:
        return cls(status, text.encode(), f"{content_type}; charset=utf-8")


Handler = Callable[[Request], Awaitable[Response]]


def error_response(status: int, message: str) -> Response:
    """The control API's error shape, ``{"error": message, "status": status}``."""
    return Response.json({"error": message, "status": status}, status)


class Router:
    """``(method, pattern)`` → handler; a pattern's ``{name}`` matches one path segment."""

    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        segments = [
            f"(?P<{part[1:-1]}>[^/]+)"
            if part.startswith("{") and part.endswith("}")
            else re.escape(part)
            for part in pattern.split("/")
        ]
        regex = re.compile("^" + "/".join(segments) + "$")
        for existing, methods in self._routes:
            if existing.pattern == regex.pattern:
                methods[method] = handler
                return
        self._routes.append((regex, {method: handler}))

    def resolve(self, request: Request) -> Handler | Response:
        """The handler for ``request`` (its ``match`` filled in), or a 404 / 405 response."""
        for regex, methods in self._routes:
            found = regex.match(request.path)
            if found is None:
                continue
            method = "GET" if request.method == "HEAD" else request.method
            handler = methods.get(method)
            if handler is None:
                allowed = sorted({*methods, *(["HEAD"] if "GET" in methods else [])})
                response = error_response(405, "method not allowed")
                response.headers["Allow"] = ", ".join(allowed)
                return response
            request.match = {key: unquote(value) for key, value in found.groupdict().items()}
            return handler
        return error_response(404, "not found")


class _TooLarge(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Connection(asyncio.Protocol):
    """One client connection: parse, queue, answer in order, close when asked or idle."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[Request] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.reading = True
        self.closing = False
        self.refusal: _TooLarge | None = None
        self.peer_done = False
        self._reset_message()

    def _reset_message(self) -> None:
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0

    # -- timers --------------------------------------------------------------------
    def _arm(self, seconds: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expired(self) -> None:
        self.timer = None
        if self.closing or (self.worker is None and not self.queue):
            self._close()

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.server.connections.add(self)
        self._arm(IDLE_TIMEOUT_S)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "bad request: protocol upgrade is not supported")
        except httptools.HttpParserError as exc:
            # httptools wraps what a callback raised; a refusal of ours was kept aside.
            refusal, self.refusal = self.refusal, None
            if refusal is not None:
                self._fail(refusal.status, str(refusal))
            else:
                self._fail(400, f"bad request: {exc}")

    def eof_received(self) -> bool:
        """The client sent everything (half-close): answer what is queued, then close."""
        self.peer_done = True
        if self.closing or (self.worker is None and not self.queue):
            self._close()
        return True  # keep the socket open for the answers still to write

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._disarm()
        self.server.connections.discard(self)
        if self.worker is not None:
            self.worker.cancel()

    # -- httptools callbacks -----------------------------------------------------------
    def on_message_begin(self) -> None:
        self._reset_message()
        self._arm(READ_TIMEOUT_S)

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_header_bytes(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value))
        self._headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        headers = dict(self._headers)
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            self._refuse(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        if headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > MAX_BODY_BYTES:
            self._refuse(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        url = httptools.parse_url(self._url)
        request = Request(
            method=self.parser.get_method().decode("ascii", errors="replace"),
            path=(url.path or b"/").decode("latin-1"),
            headers=dict(self._headers),
            body=b"".join(self._body),
            keep_alive=self.parser.should_keep_alive(),
        )
        self._reset_message()
        self._disarm()
        self.queue.append(request)
        if len(self.queue) >= MAX_PIPELINED and self.reading and self.transport is not None:
            self.reading = False
            self.transport.pause_reading()
        if self.worker is None:
            self.worker = self.loop.create_task(self._serve())

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_HEADER_BYTES:
            self._refuse(431, f"request header larger than {MAX_HEADER_BYTES} bytes")

    def _refuse(self, status: int, message: str) -> None:
        """Stop parsing this request (raised through httptools, answered by data_received)."""
        self.refusal = _TooLarge(status, message)
        raise self.refusal

    # -- answering ---------------------------------------------------------------------
    async def _serve(self) -> None:
        try:
            while self.queue and not self.closing:
                request = self.queue.popleft()
                if not self.reading and self.transport is not None:
                    self.reading = True
                    self.transport.resume_reading()
                response = await self.server.answer(request)
                if self.closing:  # failed (a later pipelined request) or lost meanwhile
                    return
                self._send(request, response)
                if not request.keep_alive:
                    self._close()
                    return
        finally:
            self.worker = None
        if self.peer_done:
            self._close()
        elif not self.closing:
            self._arm(IDLE_TIMEOUT_S)

    def _send(self, request: Request | None, response: Response) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        reason = _reason(response.status)
        lines = [f"HTTP/1.1 {response.status} {reason}"]
        if response.content_type is not None:
            lines.append(f"Content-Type: {response.content_type}")
        lines.append(f"Content-Length: {len(response.body)}")
        lines.extend(f"{name}: {value}" for name, value in response.headers.items())
        if request is None or not request.keep_alive:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if request is not None and request.method == "HEAD":
            transport.write(head)
        else:
            transport.write(head + response.body)

    def _fail(self, status: int, message: str) -> None:
        """The request cannot be parsed or is too large: answer it and close.

        The rest of what the client sends is read and dropped for a moment
        (:data:`LINGER_S`) after our FIN: closing with unread data would send an
        RST, which can destroy the answer before the client has read it.
        """
        self._send(None, error_response(status, message))
        self.closing = True
        self.queue.clear()
        transport = self.transport
        if transport is None or transport.is_closing() or not transport.can_write_eof():
            self._close()
            return
        transport.write_eof()
        if not self.reading:
            self.reading = True
            transport.resume_reading()
        self._arm(LINGER_S)

    def _close(self) -> None:
        self.closing = True
        self._disarm()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class HttpServer:
    """Serves a :class:`Router` on ``host:port`` of the running loop."""

    def __init__(
        self,
        router: Router,
        *,
        before: Callable[[Request], Response | None] | None = None,
        on_error: Callable[[Request, Exception], Response] | None = None,
    ) -> None:
        self.router = router
        self.before = before
        self.on_error = on_error
        self.connections: set[_Connection] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; returns the bound address (``port`` 0: any free port). Raises OSError."""
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Connection(self), host, port, reuse_address=True
        )
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def close(self) -> None:
        """Stop listening and close every connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self.connections):
            conn._close()
        if server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    async def answer(self, request: Request) -> Response:
        """Route and run one request; never raises (a failing handler is a 500)."""
        try:
            if self.before is not None:
                refused = self.before(request)
                if refused is not None:
                    return refused
            target = self.router.resolve(request)
            if isinstance(target, Response):
                return target
            async with asyncio.timeout(HANDLER_TIMEOUT_S):
                return await target(request)
        except TimeoutError:
            log.error(
                "%s %s took longer than %.0f s", request.method, request.path, HANDLER_TIMEOUT_S
            )
            return Response(503)
        except Exception as exc:
            if self.on_error is not None:
                with contextlib.suppress(Exception):
                    return self.on_error(request, exc)
            log.exception("HTTP handler failed on %s %s", request.method, request.path)
            return error_response(500, f"internal error: {exc}")
