"""Pure ASGI middleware: server span with W3C context, RED metrics, request body bound.

Pure ASGI (not ``BaseHTTPMiddleware``) because it sits on the hot path of
every checkout.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from paychaos.stack.api.metrics import ApiMetrics
from paychaos.stack.api.problems import problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_UNTRACED = frozenset({"/metrics", "/healthz", "/readyz", "/openapi.json", "/docs"})
_PROPAGATION_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})


class BodyTooLarge(Exception):
    pass


class TelemetryMiddleware:
    """Wraps every HTTP request in a SERVER span and records RED metrics."""

    def __init__(
        self, app: ASGIApp, *, metrics: ApiMetrics, tracer: Tracer, max_body_bytes: int
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.tracer = tracer
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        http_method: str = scope["method"]
        carrier: dict[str, str] = {}
        content_length = 0
        for name, value in scope["headers"]:
            if name in _PROPAGATION_HEADERS:
                carrier[name.decode("latin-1")] = value.decode("latin-1")
            elif name == b"content-length" and value.isdigit():
                content_length = int(value)
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        if content_length > self.max_body_bytes:
            response = problem(
                413,
                "body-too-large",
                "Request body too large",
                f"the body is {content_length} bytes; the limit is {self.max_body_bytes}",
            )
            await response(scope, receive, send_wrapper)
            self._record(scope, path, http_method, status[0], start)
            return

        received = [0]

        async def bounded_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        if path in _UNTRACED:
            await self.app(scope, bounded_receive, send_wrapper)
            self._record(scope, path, http_method, status[0], start)
            return

        with self.tracer.start_as_current_span(
            f"{http_method} {path}",
            context=extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            try:
                await self.app(scope, bounded_receive, send_wrapper)
            except BodyTooLarge:
                response = problem(
                    413,
                    "body-too-large",
                    "Request body too large",
                    f"the body exceeds the limit of {self.max_body_bytes} bytes",
                )
                await response(scope, receive, send_wrapper)
            route = self._record(scope, path, http_method, status[0], start)
            if span.is_recording():
                span.update_name(f"{http_method} {route}")
                span.set_attributes(  # one call: the SDK locks and checks once
                    {
                        "http.request.method": http_method,
                        "http.route": route,
                        "url.path": path,
                        "http.response.status_code": status[0],
                    }
                )
                if status[0] >= 500:
                    span.set_status(Status(StatusCode.ERROR, f"HTTP {status[0]}"))

    def _record(self, scope: Scope, path: str, http_method: str, code: int, start: float) -> str:
        route_obj = scope.get("route")
        route = getattr(route_obj, "path", None) or ("unmatched" if code == 404 else path)
        elapsed = time.perf_counter() - start
        labels = (route, http_method, str(code))
        self.metrics.requests.labels(*labels).inc()
        self.metrics.request_duration.labels(*labels).observe(elapsed)
        return route
