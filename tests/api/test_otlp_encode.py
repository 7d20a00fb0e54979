"""The cheaper span encoder writes exactly what the OpenTelemetry exporter would."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from paychaos.stack.api.metrics import create_noop_metrics
from paychaos.stack.otlp_encode import LogEncoder, SpanEncoder
from paychaos.stack.telemetry import OtlpLogHandler


def _spans() -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "payment-api", "n": 3}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("payment-api", "1.2.3", schema_url="https://x/schema")
    other = provider.get_tracer("other-scope")
    remote = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "v1")]),
    )
    parent_ctx = set_span_in_context(NonRecordingSpan(remote))
    for i in range(3):
        with tracer.start_as_current_span(
            "POST /api/checkout", context=parent_ctx, kind=SpanKind.SERVER
        ) as server:
            server.set_attribute("payment.method", "visa")
            server.set_attribute("payment.idempotency_key", f"load-{i}")
            server.set_attribute("http.response.status_code", 201 + i)
            server.set_attribute("negative", -5)
            server.set_attribute("ratio", 0.25)
            server.set_attribute("flag", i % 2 == 0)
            server.set_attribute("empty", "")
            server.set_attribute("tags", ["a", "b"])
            server.set_attribute("codes", [1, 2, 3])
            with tracer.start_as_current_span(
                "INSERT payments",
                kind=SpanKind.CLIENT,
                attributes={"db.query.text": "INSERT INTO payments VALUES ($1)", "port": 15433},
                links=[Link(remote, {"link.kind": "retry"})],
            ) as db:
                db.add_event("retry", {"attempt": 2})
                db.set_status(Status(StatusCode.ERROR, "ConnectionDoesNotExistError"))
            with other.start_as_current_span("internal") as inner:
                inner.record_exception(ValueError("card 4111"))
                inner.set_status(Status(StatusCode.OK))
    return list(memory.get_finished_spans())


def test_the_bytes_are_the_exporters_bytes() -> None:
    spans = _spans()
    ours = SpanEncoder().encode(spans)
    assert ours == encode_spans(spans).SerializePartialToString()
    decoded = ExportTraceServiceRequest()
    decoded.ParseFromString(ours)
    assert len(decoded.resource_spans[0].scope_spans) == 2
    assert sum(len(s.spans) for s in decoded.resource_spans[0].scope_spans) == len(spans)


def test_the_pair_cache_keeps_types_apart_and_survives_its_bound() -> None:
    encoder = SpanEncoder()
    spans = _spans()
    first = encoder.encode(spans)
    assert encoder.encode(spans) == first  # from the cache, the same bytes
    for i in range(5000):  # past the bound: cleared, not grown without end
        encoder._attributes(0x4A, {"k": f"v{i}"})
    assert len(encoder._pairs) <= 4096
    # True == 1 and hash alike: a cached bool must never be written for an int
    assert encoder._attributes(0x4A, {"x": True}) != encoder._attributes(0x4A, {"x": 1})
    assert encoder.encode(spans) == encode_spans(spans).SerializePartialToString()


def test_log_records_are_the_exporters_bytes() -> None:
    import logging

    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import (
        InMemoryLogRecordExporter,
        SimpleLogRecordProcessor,
    )

    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "payment-api"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = logging.getLogger("test-otlp-encode")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = OtlpLogHandler(provider)
    logger.addHandler(handler)
    tracer = TracerProvider().get_tracer("t")
    try:
        with tracer.start_as_current_span("checkout"):
            logger.info("payment succeeded", extra={"amount_cents": 120, "method": "visa"})
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception("gateway error")
        logger.warning("outside any span", extra={"ratio": 0.5, "ok": True})
        logging.getLogger("other-logger").addHandler(handler)
        logging.getLogger("other-logger").error("")
    finally:
        logger.removeHandler(handler)
        logging.getLogger("other-logger").removeHandler(handler)
    records = list(memory.get_finished_logs())
    assert len(records) == 4
    assert LogEncoder().encode(records) == encode_logs(records).SerializeToString()


def test_metrics_off_record_nothing_and_expose_nothing() -> None:
    from prometheus_client import generate_latest

    metrics = create_noop_metrics()
    metrics.payments.labels("visa", "success").inc()
    metrics.request_duration.labels("/api/checkout", "POST", "201").observe(0.1)
    metrics.in_flight.inc()
    metrics.in_flight.dec()
    metrics.build_info.labels("1").set(1)
    assert generate_latest(metrics.registry) == b""
