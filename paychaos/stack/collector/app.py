"""The collector's HTTP face: receivers, query API, health and metrics (Starlette).

Receivers (what Alloy receives in the seed's architecture):

- ``POST /v1/traces``, ``POST /v1/logs``: OTLP/HTTP, ``application/x-protobuf`` or
  ``application/json``, optionally ``Content-Encoding: gzip``; answered with an
  ``Export*ServiceResponse`` in the request's content type (partial success for
  refused items).
- ``POST /collect``, ``POST /collect/{app_key}``: Faro web SDK payloads, 202; CORS.
- ``POST /alertmanager/webhook``: Alertmanager webhook notifications (v4).

Query API (JSON; parameters are described in :mod:`paychaos.stack.collector.wire`):

- ``GET /api/spans``, ``GET /api/traces/{trace_id}``, ``GET /api/logs``,
  ``GET /api/rum``, ``GET /api/alerts``
- ``GET /api/traces/{trace_id}/critical-path``: critical path and self times
- ``GET /api/analysis/latency``: span-query parameters plus ``max_traces``; the
  latency breakdown of the traces containing matching spans.
- ``GET /api/volume?since_unix_s=&until_unix_s=``: items and bytes stored per signal
  (spans, logs, rum) in the window (``paychaos budget`` reads it).

Refusals: malformed body 400, wrong content type or encoding 415, too large
(before or after inflating) 413, store unavailable 503. Each is counted in
``collector_items_rejected_total{signal,reason}`` (one per refused request,
or per refused item for partial successes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
from google.rpc.status_pb2 import Status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from paychaos.contracts.errors import StackError
from paychaos.contracts.signals import AlertQuery, LogQuery, RumQuery, SpanQuery

from . import alerts as alertmanager
from . import analysis, faro, otlp, wire
from .bodies import (
    DEFAULT_MAX_BODY_BYTES,
    BodyTooLarge,
    CorruptEncoding,
    UnsupportedEncoding,
    read_body,
)
from .logfile import FollowedLog, LogFollower, Positions
from .metrics import CollectorMetrics
from .store import SqliteStore

log = logging.getLogger("paychaos.stack.collector")
R = TypeVar("R")

_FARO_TYPES = ("application/json", "text/plain", "")
_GRPC_INVALID_ARGUMENT = 3
_GRPC_UNAVAILABLE = 14
_SIGNAL_OF_TABLE = {"spans": "spans", "logs": "logs", "rum": "rum", "alerts": "alerts"}


@dataclass(frozen=True)
class CollectorSettings:
    """Knobs of one collector process (see ``python -m paychaos.stack.collector --help``)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    retention_interval_s: float = 5.0
    allow_origins: tuple[str, ...] = ("*",)
    query_threads: int = 2
    # services' JSON log files read as they grow (instead of OTLP log records), and
    # where reading got to (kept across restarts; None: start each file from its start)
    follow_logs: tuple[FollowedLog, ...] = ()
    positions_path: Path | None = None
    follow_interval_s: float = 0.2

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be positive, got {self.max_body_bytes}")
        if self.follow_interval_s <= 0:
            raise ValueError(f"follow_interval_s must be positive, got {self.follow_interval_s}")
        if self.retention_interval_s <= 0:
            raise ValueError(
                f"retention_interval_s must be positive, got {self.retention_interval_s}"
            )


class _Refused(Exception):
    """A request refused as a whole: status, reason label and message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def create_app(
    store: SqliteStore,
    settings: CollectorSettings | None = None,
    metrics: CollectorMetrics | None = None,
) -> Starlette:
    """Build the ASGI app around an open store; the app closes the store on shutdown."""
    settings = settings or CollectorSettings()
    metrics = metrics or CollectorMetrics()
    readers = ThreadPoolExecutor(settings.query_threads, thread_name_prefix="sqlite-reader")

    async def on_writer(fn: Callable[[], R]) -> R:
        return await asyncio.wrap_future(store.submit(fn))

    async def on_reader(fn: Callable[..., R], *args: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(readers, fn, *args)

    async def body_of(request: Request) -> bytes:
        try:
            return await read_body(
                request.stream(),
                content_length=request.headers.get("content-length"),
                content_encoding=request.headers.get("content-encoding"),
                max_body_bytes=settings.max_body_bytes,
            )
        except BodyTooLarge as exc:
            raise _Refused(413, "too_large", str(exc)) from exc
        except UnsupportedEncoding as exc:
            raise _Refused(415, "unsupported_encoding", str(exc)) from exc
        except CorruptEncoding as exc:
            raise _Refused(400, "malformed", str(exc)) from exc

    def otlp_refusal(signal: str, ctype: str, refused: _Refused) -> Response:
        metrics.rejected.labels(signal=signal, reason=refused.reason).inc()
        log.debug("refused %s request: %s", signal, refused)
        code = _GRPC_UNAVAILABLE if refused.status == 503 else _GRPC_INVALID_ARGUMENT
        if ctype in (otlp.PROTOBUF, otlp.JSON):
            status = Status(code=code, message=str(refused))
            return Response(otlp.encode_response(status, ctype), refused.status, media_type=ctype)
        return PlainTextResponse(str(refused), refused.status)

    async def receive_otlp(
        request: Request,
        signal: str,
        message_type: type[otlp.ExportTraceServiceRequest] | type[otlp.ExportLogsServiceRequest],
    ) -> Response:
        ctype = _media_type(request)
        try:
            if ctype not in (otlp.PROTOBUF, otlp.JSON):
                raise _Refused(415, "unsupported_media_type", f"unsupported Content-Type {ctype!r}")
            body = await body_of(request)
            message = message_type()
            try:
                otlp.parse_request(body, ctype, message)
            except otlp.MalformedPayload as exc:
                raise _Refused(400, "malformed", str(exc)) from exc
            now_ns = time.time_ns()

            def ingest() -> tuple[int, int, str]:
                if isinstance(message, otlp.ExportTraceServiceRequest):
                    spans = otlp.spans_from_request(message)
                    store.add_spans(spans.items)
                    return len(spans.items), spans.rejected, spans.error_message
                records = otlp.logs_from_request(message, now_ns)
                store.add_logs(records.items)
                return len(records.items), records.rejected, records.error_message

            try:
                accepted, rejected, error = await on_writer(ingest)
            except StackError as exc:
                raise _Refused(503, "store_unavailable", str(exc)) from exc
        except _Refused as refused:
            return otlp_refusal(signal, ctype, refused)
        metrics.accepted.labels(signal=signal).inc(accepted)
        if rejected:
            metrics.rejected.labels(signal=signal, reason="invalid_item").inc(rejected)
        if signal == "spans":
            response: Any = otlp.trace_response(rejected, error)
        else:
            response = otlp.logs_response(rejected, error)
        return Response(otlp.encode_response(response, ctype), media_type=ctype)

    async def v1_traces(request: Request) -> Response:
        return await receive_otlp(request, "spans", otlp.ExportTraceServiceRequest)

    async def v1_logs(request: Request) -> Response:
        return await receive_otlp(request, "logs", otlp.ExportLogsServiceRequest)

    async def collect(request: Request) -> Response:
        try:
            if _media_type(request) not in _FARO_TYPES:
                raise _Refused(415, "unsupported_media_type", "Faro payloads are JSON")
            body = await body_of(request)
            try:
                payload = faro.parse_payload(body)
                items = faro.rum_items(payload)
                traces = faro.trace_request(payload)
            except otlp.MalformedPayload as exc:  # its message already says what is wrong
                raise _Refused(400, "malformed", str(exc)) from exc

            def ingest() -> tuple[int, int]:
                spans = otlp.spans_from_request(traces)
                store.add_rum(items)
                store.add_spans(spans.items)
                return len(spans.items), spans.rejected

            try:
                span_count, span_rejected = await on_writer(ingest)
            except StackError as exc:
                raise _Refused(503, "store_unavailable", str(exc)) from exc
        except _Refused as refused:
            metrics.rejected.labels(signal="rum", reason=refused.reason).inc()
            return PlainTextResponse(str(refused), refused.status)
        metrics.accepted.labels(signal="rum").inc(len(items))
        metrics.accepted.labels(signal="spans").inc(span_count)
        if span_rejected:
            metrics.rejected.labels(signal="spans", reason="invalid_item").inc(span_rejected)
        metrics.observe_rum(items)
        return PlainTextResponse("ok", 202)

    async def alertmanager_webhook(request: Request) -> Response:
        try:
            if _media_type(request) not in ("application/json", ""):
                raise _Refused(415, "unsupported_media_type", "webhook payloads are JSON")
            body = await body_of(request)
            try:
                message = alertmanager.parse_webhook(body)
            except otlp.MalformedPayload as exc:
                raise _Refused(400, "malformed", str(exc)) from exc
            notes = alertmanager.notifications(message, time.time_ns())
            try:
                await on_writer(lambda: store.add_alerts(notes))
            except StackError as exc:
                raise _Refused(503, "store_unavailable", str(exc)) from exc
        except _Refused as refused:
            metrics.rejected.labels(signal="alerts", reason=refused.reason).inc()
            return _json({"error": str(refused)}, refused.status)
        metrics.accepted.labels(signal="alerts").inc(len(notes))
        metrics.observe_alerts(notes)
        return _json({"status": "ok", "alerts": len(notes)})

    async def run_query(
        request: Request, cls: type[wire.Q], find: Callable[[wire.Q], list[Any]]
    ) -> Response:
        try:
            query = wire.query_from_params(cls, request.query_params.multi_items())
        except (ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
        try:
            results = await on_reader(find, query)
        except StackError as exc:
            return _json({"error": str(exc)}, 503)
        return _json({"results": [wire.to_json(item) for item in results]})

    async def api_spans(request: Request) -> Response:
        return await run_query(request, SpanQuery, store.find_spans)

    async def api_logs(request: Request) -> Response:
        return await run_query(request, LogQuery, store.find_logs)

    async def api_rum(request: Request) -> Response:
        return await run_query(request, RumQuery, store.find_rum)

    async def api_alerts(request: Request) -> Response:
        return await run_query(request, AlertQuery, store.find_alert_notifications)

    async def api_trace(request: Request) -> Response:
        trace_id = request.path_params["trace_id"]
        try:
            spans = await on_reader(store.get_trace, trace_id)
        except StackError as exc:
            return _json({"error": str(exc)}, 503)
        return _json({"results": [wire.to_json(span) for span in spans]})

    async def api_critical_path(request: Request) -> Response:
        trace_id = request.path_params["trace_id"]
        try:
            spans = await on_reader(store.get_trace, trace_id)
        except StackError as exc:
            return _json({"error": str(exc)}, 503)
        if not spans:
            return _json({"error": f"trace {trace_id} not found"}, 404)
        path = analysis.critical_path(spans)
        return _json(
            {
                "critical_path": asdict(path),
                "time_by_span_ns": path.time_by_span_ns(),
                "self_time_ns": analysis.self_times(spans),
            }
        )

    async def api_latency(request: Request) -> Response:
        params = request.query_params.multi_items()
        try:
            max_traces = int(next((v for k, v in params if k == "max_traces"), "100"))
            query = wire.query_from_params(
                SpanQuery, [(k, v) for k, v in params if k != "max_traces"]
            )
        except (ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
        try:
            breakdown = await on_reader(
                lambda: analysis.breakdown_for(store, query, max_traces=max_traces)
            )
        except StackError as exc:
            return _json({"error": str(exc)}, 503)
        dominant = breakdown.dominant
        return _json({**asdict(breakdown), "dominant": dominant.describe() if dominant else None})

    async def api_volume(request: Request) -> Response:
        bounds: dict[str, float | None] = {"since_unix_s": None, "until_unix_s": None}
        for key, value in request.query_params.multi_items():
            if key not in bounds:
                return _json({"error": f"unknown parameter {key!r}"}, 400)
            try:
                bounds[key] = float(value)
            except ValueError:
                return _json({"error": f"{key} must be a unix time in seconds"}, 400)
        try:
            volume = await on_reader(store.volume, bounds["since_unix_s"], bounds["until_unix_s"])
        except StackError as exc:
            return _json({"error": str(exc)}, 503)
        return _json({**bounds, "signals": {k: asdict(v) for k, v in volume.items()}})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def retention_loop() -> None:
        while True:
            await asyncio.sleep(settings.retention_interval_s)
            try:
                dropped = await on_writer(store.enforce_retention)
            except StackError as exc:
                log.warning("retention pass failed: %s", exc)
                continue
            for table, count in dropped.items():
                if count:
                    metrics.dropped.labels(signal=_SIGNAL_OF_TABLE[table], reason="retention").inc(
                        count
                    )

    positions = Positions(settings.positions_path) if settings.positions_path else None
    known = positions.load() if positions else {}
    followers = [LogFollower(f, known.get(str(f.path))) for f in settings.follow_logs]

    def follow_once() -> int:
        """On the writer thread: store what each file grew by, then remember where."""
        stored, moved = 0, False
        for follower in followers:
            records = follower.read(time.time_ns())
            if records:
                store.add_logs(records)
                stored += len(records)
            moved = follower.commit() or moved
        if moved and positions is not None:
            try:
                positions.save(followers)
            except OSError as exc:
                log.warning("cannot save log positions to %s: %s", positions.path, exc)
        return stored

    async def follow_loop() -> None:
        while True:
            try:
                stored = await on_writer(follow_once)
            except (StackError, OSError) as exc:
                log.warning("reading followed logs failed: %s", exc)
            else:
                if stored:
                    metrics.accepted.labels(signal="logs").inc(stored)
            await asyncio.sleep(settings.follow_interval_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(retention_loop())]
        if followers:
            tasks.append(asyncio.create_task(follow_loop()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if followers:  # what was written until now (a stop, or a crash's last words)
                with contextlib.suppress(StackError, OSError):
                    await on_writer(follow_once)
            readers.shutdown(wait=True)
            await asyncio.get_running_loop().run_in_executor(None, store.close)

    routes = [
        Route("/v1/traces", v1_traces, methods=["POST"]),
        Route("/v1/logs", v1_logs, methods=["POST"]),
        Route("/collect", collect, methods=["POST"]),
        Route("/collect/{app_key}", collect, methods=["POST"]),
        Route("/alertmanager/webhook", alertmanager_webhook, methods=["POST"]),
        Route("/api/spans", api_spans),
        Route("/api/traces/{trace_id}", api_trace),
        Route("/api/traces/{trace_id}/critical-path", api_critical_path),
        Route("/api/analysis/latency", api_latency),
        Route("/api/logs", api_logs),
        Route("/api/rum", api_rum),
        Route("/api/alerts", api_alerts),
        Route("/api/volume", api_volume),
        Route("/healthz", healthz),
        Route("/metrics", metrics_endpoint),
    ]
    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.allow_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
            max_age=600,
        )
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
