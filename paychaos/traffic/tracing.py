"""The shopper's side of a trace: a ``checkout`` client span per payment, exported over OTLP/HTTP.

Locust's own ``--otel`` instruments ``requests``/``urllib3`` (``HttpUser``),
not ``FastHttpUser``'s geventhttpclient, and defaults to OTLP/gRPC; so the
shopper makes its span itself. It does not need the OpenTelemetry SDK for
that: a client span with no parent is two random ids (W3C ``traceparent``:
16 and 8 bytes, hex), two timestamps and a few attributes. The SDK's
per-span machinery (context, processor, a real thread next to gevent) cost
more than the checkout request it traced, so spans here are plain
:class:`ClientSpan` tuples, buffered and exported in batches as OTLP/JSON
(service ``shopper``) from a background greenlet every ``export_interval_s``::

    tracer = ShopperTracer.create("http://127.0.0.1:4318")
    trace_id, span_id = tracer.new_ids(rng)
    client.post(url, headers={"traceparent": traceparent(trace_id, span_id)})
    tracer.end(ClientSpan(trace_id, span_id, start_ns, time.time_ns(), "visa", key,
                          201, 1, "succeeded"))

Exporters are tiny (:class:`SpanExporter`: ``export``/``shutdown``); an
:class:`InMemorySpanExporter` is shipped for tests.
"""

from __future__ import annotations

import functools
import logging
import random
from typing import Any, NamedTuple, Protocol

import orjson

log = logging.getLogger("paychaos.traffic.tracing")

SERVICE_NAME = "shopper"
SCOPE_NAME = "paychaos.traffic"
SPAN_NAME = "checkout"
SPAN_KIND_CLIENT = 3  # OTLP SpanKind
STATUS_ERROR = 2  # OTLP StatusCode
ERROR_OUTCOMES = frozenset({"unknown", "rejected"})


class ClientSpan(NamedTuple):
    """One finished ``checkout`` client span (ids in hex, times in Unix nanoseconds)."""

    trace_id: str
    span_id: str
    start_unix_ns: int
    end_unix_ns: int
    method: str
    idempotency_key: str
    status_code: int
    attempts: int
    outcome: str


def traceparent(trace_id: str, span_id: str) -> str:
    """The W3C ``traceparent`` header of a sampled span."""
    return f"00-{trace_id}-{span_id}-01"


def new_ids(rng: random.Random) -> tuple[str, str]:
    """A random (trace id, span id) in hex, never all zeros (W3C: invalid)."""
    trace_id = rng.getrandbits(128) or 1
    span_id = rng.getrandbits(64) or 1
    return f"{trace_id:032x}", f"{span_id:016x}"


class SpanExporter(Protocol):
    """Where batches of finished spans go."""

    def export(self, spans: list[ClientSpan]) -> bool: ...

    def shutdown(self) -> None: ...


class InMemorySpanExporter:
    """Keeps every exported span (tests)."""

    def __init__(self) -> None:
        self.spans: list[ClientSpan] = []

    def export(self, spans: list[ClientSpan]) -> bool:
        self.spans.extend(spans)
        return True

    def shutdown(self) -> None:
        pass


def _attr(key: str, value: str | int) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


@functools.lru_cache(maxsize=256)
def _json_str(text: str) -> bytes:
    return orjson.dumps(text)


_SPAN_JSON = (
    b'{"traceId":%s,"spanId":%s,"name":"' + SPAN_NAME.encode() + b'","kind":%d,'
    b'"startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":['
    b'{"key":"payment.method","value":{"stringValue":%s}},'
    b'{"key":"payment.idempotency_key","value":{"stringValue":%s}},'
    b'{"key":"http.request.method","value":{"stringValue":"POST"}},'
    b'{"key":"http.response.status_code","value":{"intValue":"%d"}},'
    b'{"key":"payment.attempts","value":{"intValue":"%d"}},'
    b'{"key":"payment.outcome","value":{"stringValue":%s}}]%s}'
)
_RESOURCE_HEAD = (
    b'{"resourceSpans":[{"resource":{"attributes":['
    + orjson.dumps(_attr("service.name", SERVICE_NAME))
    + b']},"scopeSpans":[{"scope":{"name":"'
    + SCOPE_NAME.encode()
    + b'"},"spans":['
)


def span_json(s: ClientSpan) -> bytes:
    """One span of an OTLP/JSON export (hex ids, as the OTLP/JSON spec says)."""
    status = b""
    if s.outcome in ERROR_OUTCOMES:
        message = orjson.dumps(f"checkout {s.outcome} ({s.status_code})")
        status = b',"status":{"code":%d,"message":%s}' % (STATUS_ERROR, message)
    return _SPAN_JSON % (
        orjson.dumps(s.trace_id),
        orjson.dumps(s.span_id),
        SPAN_KIND_CLIENT,
        s.start_unix_ns,
        s.end_unix_ns,
        _json_str(s.method),
        orjson.dumps(s.idempotency_key),
        s.status_code,
        s.attempts,
        _json_str(s.outcome),
        status,
    )


def otlp_json(spans: list[ClientSpan]) -> bytes:
    """An OTLP/JSON ``ExportTraceServiceRequest`` of the spans (service ``shopper``)."""
    return _RESOURCE_HEAD + b",".join(map(span_json, spans)) + b"]}]}]}"


class OtlpHttpJsonExporter:
    """POSTs OTLP/JSON to ``<collector>/v1/traces`` (geventhttpclient, keep-alive)."""

    def __init__(self, collector_url: str, timeout_s: float = 5.0) -> None:
        from geventhttpclient import URL, HTTPClient

        self.url = URL(collector_url.rstrip("/") + "/v1/traces")
        self._client = HTTPClient.from_url(
            self.url, concurrency=1, connection_timeout=timeout_s, network_timeout=timeout_s
        )
        self.failed = 0

    def export(self, spans: list[ClientSpan]) -> bool:
        try:
            response = self._client.post(
                self.url.request_uri,
                body=otlp_json(spans),
                headers={"Content-Type": "application/json"},
            )
            response.read()
            ok = bool(response.status_code < 300)
        except Exception as exc:  # transport errors of a best-effort side channel: log, count
            ok = False
            if self.failed in (0, 99, 9_999):
                log.warning("span export to %s failed: %s", self.url, exc)
        if not ok:
            self.failed += 1
        return ok

    def shutdown(self) -> None:
        self._client.close()


class ShopperTracer:
    """Collects finished ``checkout`` spans and exports them in batches from a greenlet."""

    def __init__(
        self,
        exporter: SpanExporter | None,
        *,
        export_interval_s: float = 1.0,
        max_batch: int = 2048,
        max_queue: int = 65_536,
    ) -> None:
        self.exporter = exporter
        self.export_interval_s = export_interval_s
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.dropped = 0
        self._buffer: list[ClientSpan] = []
        self._greenlet: Any = None
        self._lock: Any = None

    @classmethod
    def create(cls, collector_url: str, exporter: SpanExporter | None = None) -> ShopperTracer:
        """A tracer exporting to ``<collector_url>/v1/traces``; disabled when the URL is empty."""
        if exporter is None and collector_url:
            exporter = OtlpHttpJsonExporter(collector_url)
        return cls(exporter)

    @property
    def enabled(self) -> bool:
        return self.exporter is not None

    new_ids = staticmethod(new_ids)

    def end(self, span: ClientSpan) -> None:
        """Queue a finished span (never blocks; drops and counts beyond ``max_queue``)."""
        if self.exporter is None:
            return
        if len(self._buffer) >= self.max_queue:
            self.dropped += 1
            return
        self._buffer.append(span)
        if self._greenlet is None:
            import gevent

            self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        import gevent

        while True:
            gevent.sleep(self.export_interval_s)
            self.flush()

    def flush(self) -> None:
        """Export everything buffered now (in batches of ``max_batch``); one flush at a time."""
        if self._lock is None:
            from gevent.lock import BoundedSemaphore

            self._lock = BoundedSemaphore(1)
        with self._lock:
            while self._buffer and self.exporter is not None:
                batch = self._buffer[: self.max_batch]
                self.exporter.export(batch)  # yields; shoppers keep appending behind the batch
                del self._buffer[: len(batch)]

    def shutdown(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None
        self.flush()
        if self.exporter is not None:
            self.exporter.shutdown()
            self.exporter = None
