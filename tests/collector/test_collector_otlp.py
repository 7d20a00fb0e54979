"""OTLP/HTTP receivers driven by the real OpenTelemetry SDK exporters and hand-posted OTLP JSON."""

from __future__ import annotations

import gzip
import json
import time

from collector_harness import RunningCollector
from google.protobuf import json_format
from opentelemetry import trace as trace_api
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from paychaos.contracts.signals import LogQuery, Span, SpanQuery
from paychaos.stack.collector.client import CollectorClient


def make_checkout_spans(service: str = "payment-api") -> list[ReadableSpan]:
    """One trace: POST /checkout -> SELECT (slow) and gateway call, made by the real SDK."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.collector")
    with tracer.start_as_current_span(
        "POST /checkout",
        kind=SpanKind.SERVER,
        attributes={"http.route": "/checkout", "payment.method": "amex", "http.status_code": 500},
    ) as root:
        with tracer.start_as_current_span(
            "SELECT payments", kind=SpanKind.CLIENT, attributes={"db.system": "postgresql"}
        ):
            time.sleep(0.02)
        with tracer.start_as_current_span("gateway charge", kind=SpanKind.CLIENT) as gateway:
            gateway.set_attribute("retry", True)
            gateway.set_attribute("amount", 12.5)
            gateway.add_event("timeout", {"after_ms": 2000})
            gateway.set_status(Status(StatusCode.ERROR, "gateway timeout"))
        root.set_status(Status(StatusCode.ERROR))
    provider.shutdown()
    return list(memory.get_finished_spans())


def assert_same_span(stored: Span, sdk_span: ReadableSpan, service: str) -> None:
    context = sdk_span.get_span_context()
    assert context is not None
    assert stored.trace_id == format(context.trace_id, "032x")
    assert stored.span_id == format(context.span_id, "016x")
    expected_parent = format(sdk_span.parent.span_id, "016x") if sdk_span.parent else None
    assert stored.parent_span_id == expected_parent
    assert stored.name == sdk_span.name
    assert stored.service == service
    assert stored.start_unix_ns == sdk_span.start_time
    assert stored.end_unix_ns == sdk_span.end_time
    assert stored.duration_ns == sdk_span.end_time - sdk_span.start_time
    assert dict(stored.attributes) == dict(sdk_span.attributes or {})
    assert stored.kind == sdk_span.kind.name.lower()
    assert (
        stored.status
        == {"UNSET": "unset", "OK": "ok", "ERROR": "error"}[sdk_span.status.status_code.name]
    )
    assert [(e.name, e.time_unix_ns, dict(e.attributes)) for e in stored.events] == [
        (e.name, e.timestamp, dict(e.attributes or {})) for e in sdk_span.events
    ]


def check_trace_stored(
    client: CollectorClient, sdk_spans: list[ReadableSpan], service: str
) -> None:
    contexts = [s.get_span_context() for s in sdk_spans]
    assert all(c is not None for c in contexts)
    trace_id = format(contexts[0].trace_id, "032x")  # type: ignore[union-attr]
    stored = client.get_trace(trace_id)
    assert len(stored) == len(sdk_spans)
    by_id = {span.span_id: span for span in stored}
    for sdk_span, context in zip(sdk_spans, contexts, strict=True):
        span_id = format(context.span_id, "016x")  # type: ignore[union-attr]
        assert_same_span(by_id[span_id], sdk_span, service)
    assert [s.name for s in stored] == ["POST /checkout", "SELECT payments", "gateway charge"]


def test_sdk_span_exporter_protobuf_round_trip(collector: RunningCollector) -> None:
    sdk_spans = make_checkout_spans()
    exporter = OTLPSpanExporter(endpoint=collector.base_url + "/v1/traces", timeout=10)
    try:
        assert exporter.export(sdk_spans) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    client = CollectorClient(collector.base_url)
    check_trace_stored(client, sdk_spans, "payment-api")

    slow = client.find_spans(SpanQuery(service="payment-api", min_duration_ms=15))
    assert {s.name for s in slow} == {"POST /checkout", "SELECT payments"}
    by_attr = client.find_spans(SpanQuery(attributes={"payment.method": "amex"}))
    assert [s.name for s in by_attr] == ["POST /checkout"]
    by_int_attr = client.find_spans(SpanQuery(attributes={"http.status_code": 500}))
    assert [s.name for s in by_int_attr] == ["POST /checkout"]
    errors = client.find_spans(SpanQuery(status="error", kind="client"))
    assert [s.name for s in errors] == ["gateway charge"]
    assert errors[0].status_message == "gateway timeout"
    fast = client.find_spans(SpanQuery(name="gateway charge", max_duration_ms=15))
    assert len(fast) == 1
    now = time.time()
    assert client.find_spans(SpanQuery(since_unix_s=now + 60)) == []
    assert len(client.find_spans(SpanQuery(since_unix_s=now - 60, until_unix_s=now + 1))) == 3
    assert collector.metric('collector_items_accepted_total{signal="spans"}') == 3


def test_sdk_span_exporter_gzip(collector: RunningCollector) -> None:
    sdk_spans = make_checkout_spans(service="gateway")
    exporter = OTLPSpanExporter(
        endpoint=collector.base_url + "/v1/traces", timeout=10, compression=Compression.Gzip
    )
    try:
        assert exporter.export(sdk_spans) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    check_trace_stored(CollectorClient(collector.base_url), sdk_spans, "gateway")


def otlp_json(request: ExportTraceServiceRequest | ExportLogsServiceRequest) -> bytes:
    """OTLP JSON of a real export request: protobuf JSON with hex ids, as the spec says."""
    document = json_format.MessageToDict(request)

    def to_hex(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    import base64

                    node[key] = base64.b64decode(value).hex()
                else:
                    to_hex(value)
        elif isinstance(node, list):
            for item in node:
                to_hex(item)

    to_hex(document)
    return json.dumps(document).encode()


def test_otlp_json_traces_plain_and_gzip(collector: RunningCollector) -> None:
    client = CollectorClient(collector.base_url)
    for compress in (False, True):
        sdk_spans = make_checkout_spans(service=f"json-{compress}")
        body = otlp_json(encode_spans(sdk_spans))
        assert b'"traceId": "' in body
        headers = {"Content-Type": "application/json"}
        if compress:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        status, response_headers, payload = collector.post("/v1/traces", body, headers)
        assert status == 200, payload
        assert response_headers["content-type"].startswith("application/json")
        response = json_format.Parse(payload, ExportTraceServiceResponse())
        assert not response.HasField("partial_success")
        check_trace_stored(client, sdk_spans, f"json-{compress}")


def test_partial_success_for_bad_ids(collector: RunningCollector) -> None:
    request = encode_spans(make_checkout_spans(service="partial"))
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[0].trace_id = b"\x01" * 8  # wrong length
    spans[1].span_id = b"\x00" * 8  # all zero
    status, headers, payload = collector.post(
        "/v1/traces",
        request.SerializeToString(),
        {"Content-Type": "application/x-protobuf"},
    )
    assert status == 200
    assert headers["content-type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(payload)
    assert response.partial_success.rejected_spans == 2
    assert "invalid trace id" in response.partial_success.error_message
    assert "invalid span id" in response.partial_success.error_message
    stored = CollectorClient(collector.base_url).find_spans(SpanQuery(service="partial"))
    assert [s.name for s in stored] == [spans[2].name]
    assert (
        collector.metric('collector_items_rejected_total{reason="invalid_item",signal="spans"}')
        == 2
    )

    # the same refusal in OTLP JSON: an id that is not hex at all
    document = json.loads(otlp_json(encode_spans(make_checkout_spans(service="partial-json"))))
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] = "not-hex!"
    status, _, payload = collector.post(
        "/v1/traces", json.dumps(document).encode(), {"Content-Type": "application/json"}
    )
    assert status == 200
    assert json.loads(payload)["partialSuccess"]["rejectedSpans"] in ("1", 1)


def test_sdk_log_exporter_protobuf_and_queries(collector: RunningCollector) -> None:
    provider = LoggerProvider(resource=Resource.create({"service.name": "payment-api"}))
    exporter = OTLPLogExporter(endpoint=collector.base_url + "/v1/logs", timeout=10)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    tracer_provider = TracerProvider()
    tracer = tracer_provider.get_tracer("tests")
    logger = provider.get_logger("payments")
    with tracer.start_as_current_span("POST /checkout") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        span_id = format(span.get_span_context().span_id, "016x")
        logger.emit(
            timestamp=time.time_ns(),
            severity_number=SeverityNumber.ERROR,
            severity_text="ERROR",
            body="payment declined by gateway",
            attributes={"payment.method": "paypal", "attempt": 2},
            context=trace_api.set_span_in_context(span),
        )
    logger.emit(
        timestamp=time.time_ns(),
        severity_number=SeverityNumber.INFO,
        severity_text="INFO",
        body="payment accepted",
        attributes={"payment.method": "visa"},
    )
    provider.shutdown()
    tracer_provider.shutdown()

    client = CollectorClient(collector.base_url)
    errors = client.find_logs(LogQuery(level="error"))
    assert len(errors) == 1
    record = errors[0]
    assert record.body == "payment declined by gateway"
    assert record.service == "payment-api"
    assert record.trace_id == trace_id
    assert record.span_id == span_id
    assert record.severity_number == SeverityNumber.ERROR.value
    assert dict(record.attributes) == {"payment.method": "paypal", "attempt": 2}
    assert client.find_logs(LogQuery(trace_id=trace_id)) == errors
    assert client.find_logs(LogQuery(attributes={"attempt": "2"})) == errors
    assert [r.body for r in client.find_logs(LogQuery(body_contains="accepted"))] == [
        "payment accepted"
    ]
    assert [r.body for r in client.find_logs(LogQuery(service="payment-api"))] == [
        "payment accepted",
        "payment declined by gateway",
    ]
    assert client.find_logs(LogQuery(service="other")) == []
    assert collector.metric('collector_items_accepted_total{signal="logs"}') == 2


def test_otlp_json_logs(collector: RunningCollector) -> None:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    attr = resource_logs.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", "gateway"
    record = resource_logs.scope_logs.add().log_records.add()
    record.time_unix_nano = 1_700_000_000_000_000_000
    record.severity_number = 13  # WARN
    record.body.string_value = "slow upstream"
    record.trace_id = bytes(range(1, 17))
    record.span_id = bytes(range(1, 9))
    status, _, payload = collector.post(
        "/v1/logs", otlp_json(request), {"Content-Type": "application/json"}
    )
    assert status == 200, payload
    logs = CollectorClient(collector.base_url).find_logs(LogQuery(level="warn"))
    assert [(r.body, r.trace_id, r.span_id, r.time_unix_ns) for r in logs] == [
        (
            "slow upstream",
            bytes(range(1, 17)).hex(),
            bytes(range(1, 9)).hex(),
            record.time_unix_nano,
        )
    ]
