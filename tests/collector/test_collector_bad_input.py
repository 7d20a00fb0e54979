"""Bad input is refused with the right status, counted, and never breaks the collector."""

from __future__ import annotations

import gzip
from collections.abc import Callable

from collector_harness import RunningCollector
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

LIMIT_BYTES = 64 * 1024
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def rejected(collector: RunningCollector, signal: str, reason: str) -> float:
    return collector.metric(
        f'collector_items_rejected_total{{reason="{reason}",signal="{signal}"}}'
    )


def test_refusals_are_answered_and_counted(
    start_collector: Callable[..., RunningCollector],
) -> None:
    collector = start_collector("--max-body-bytes", str(LIMIT_BYTES))
    cases: list[tuple[str, bytes, dict[str, str], int, str, str]] = [
        ("/v1/traces", b"\xff\xff\xff garbage", PROTOBUF, 400, "spans", "malformed"),
        ("/v1/traces", b"{not json", JSON, 400, "spans", "malformed"),
        ("/v1/traces", b"[1, 2]", JSON, 400, "spans", "malformed"),
        ("/v1/traces", b'{"resourceSpans": 7}', JSON, 400, "spans", "malformed"),
        ("/v1/logs", b"\x0a\xff\xff\xff\xff\x0f", PROTOBUF, 400, "logs", "malformed"),
        (
            "/v1/traces",
            b"hello",
            {"Content-Type": "text/plain"},
            415,
            "spans",
            "unsupported_media_type",
        ),
        (
            "/v1/logs",
            b"{}",
            {"Content-Type": "application/xml"},
            415,
            "logs",
            "unsupported_media_type",
        ),
        (
            "/v1/traces",
            b"{}",
            {**JSON, "Content-Encoding": "br"},
            415,
            "spans",
            "unsupported_encoding",
        ),
        ("/v1/traces", b"x" * (LIMIT_BYTES + 1), PROTOBUF, 413, "spans", "too_large"),
        # a decompression bomb: 50 MB of zeros in ~50 KB of gzip
        (
            "/v1/traces",
            gzip.compress(b"\0" * 50_000_000),
            {**PROTOBUF, "Content-Encoding": "gzip"},
            413,
            "spans",
            "too_large",
        ),
        (
            "/v1/traces",
            b"not gzip at all",
            {**PROTOBUF, "Content-Encoding": "gzip"},
            400,
            "spans",
            "malformed",
        ),
        (
            "/v1/traces",
            gzip.compress(b"\x0a\x00")[:-6],
            {**PROTOBUF, "Content-Encoding": "gzip"},
            400,
            "spans",
            "malformed",
        ),
        ("/collect", b"{not json", JSON, 400, "rum", "malformed"),
        ("/collect", b'{"events": [{"timestamp": "x"}]}', JSON, 400, "rum", "malformed"),
        (
            "/collect",
            b"{}",
            {"Content-Type": "application/x-protobuf"},
            415,
            "rum",
            "unsupported_media_type",
        ),
        ("/collect", b"x" * (LIMIT_BYTES + 1), JSON, 413, "rum", "too_large"),
        ("/alertmanager/webhook", b'{"version": "4"}', JSON, 400, "alerts", "malformed"),
        (
            "/alertmanager/webhook",
            b'{"version": "3", "status": "firing", "alerts": []}',
            JSON,
            400,
            "alerts",
            "malformed",
        ),
        (
            "/alertmanager/webhook",
            b"{}",
            {"Content-Type": "text/html"},
            415,
            "alerts",
            "unsupported_media_type",
        ),
    ]
    expected: dict[tuple[str, str], int] = {}
    for path, body, headers, status, signal, reason in cases:
        got, _, payload = collector.post(path, body, headers)
        assert got == status, (path, headers, body[:40], payload)
        expected[(signal, reason)] = expected.get((signal, reason), 0) + 1
        if (
            path.startswith("/v1/")
            and status in (400, 413)
            and headers["Content-Type"] == PROTOBUF["Content-Type"]
        ):
            assert Status.FromString(payload).message  # google.rpc.Status, as OTLP asks
    for (signal, reason), count in expected.items():
        assert rejected(collector, signal, reason) == count, (signal, reason)

    # still alive and still accepting good data
    assert collector.get("/healthz")[0] == 200
    good = ExportTraceServiceRequest().SerializeToString()
    assert collector.post("/v1/traces", good, PROTOBUF)[0] == 200
    assert collector.process.poll() is None


def test_unknown_query_parameters_are_400(collector: RunningCollector) -> None:
    status, body = collector.get("/api/spans?colour=blue")
    assert status == 400
    assert b"unknown parameter 'colour'" in body
    status, body = collector.get("/api/spans?min_duration_ms=slow")
    assert status == 400
    assert b"min_duration_ms must be a number" in body
    status, body = collector.get("/api/logs?level=loud")
    assert status == 400
    status, body = collector.get("/api/spans?limit=0")
    assert status == 400
    status, _ = collector.get("/api/traces/00000000000000000000000000000001/critical-path")
    assert status == 404


INTERNALS = (
    "opentelemetry.proto",
    "ExportTraceServiceRequest",
    "ExportLogsServiceRequest",
    "(char ",
    "https://",
    "int()",
    "Value error",
    "pydantic",
    "object is not",
)


def _refusal_text(status_body: bytes, headers: dict[str, str]) -> str:
    if headers["Content-Type"] == PROTOBUF["Content-Type"]:
        return Status.FromString(status_body).message
    if status_body.startswith(b"{"):
        import json

        data = json.loads(status_body)
        return str(data.get("message") or data.get("error"))
    return status_body.decode()


def test_refusals_say_what_is_wrong_in_plain_words(collector: RunningCollector) -> None:
    cases: list[tuple[str, bytes, dict[str, str], str]] = [
        ("/v1/traces", b"\xff\xff\xff garbage", PROTOBUF, "not an OTLP trace export in protobuf"),
        ("/v1/traces", b'{"resourceSpans": [\n{]}', JSON, "not JSON: line 2, column 2"),
        ("/v1/logs", b'{"resourceLogs": 3}', JSON, "not an OTLP log export: resourceLogs:"),
        (
            "/v1/traces",
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
            JSON,
            "resourceSpans.scopeSpans.spans.startTimeUnixNano: must be an integer",
        ),
        ("/alertmanager/webhook", b'{"version": "4"}', JSON, "status: Field required"),
        ("/alertmanager/webhook", b"{'version': 4}", JSON, "not JSON: line 1, column 2"),
    ]
    for path, body, headers, words in cases:
        status, _, answer = collector.post(path, body, headers)
        assert status == 400, (path, body)
        text = _refusal_text(answer, headers)
        assert words in text, (path, text)
        for internal in INTERNALS:
            assert internal not in text, (path, text)
