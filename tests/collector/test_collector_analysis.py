"""Self time, critical path and latency breakdown on hand-built traces with known answers."""

from __future__ import annotations

import json

import pytest
from collector_harness import RunningCollector
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from paychaos.contracts.signals import Span, SpanQuery
from paychaos.stack.collector.analysis import (
    breakdown_for,
    critical_path,
    latency_breakdown,
    self_times,
)
from paychaos.stack.collector.memory import InMemorySources

MS = 1_000_000


def span(
    name: str,
    start_ms: float,
    end_ms: float,
    parent: str | None = None,
    service: str = "api",
    trace: int = 1,
) -> Span:
    return Span(
        trace_id=f"{trace:032x}",
        span_id=name.encode().hex()[:16].rjust(16, "0"),
        parent_span_id=parent.encode().hex()[:16].rjust(16, "0") if parent else None,
        name=name,
        service=service,
        kind="internal",
        start_unix_ns=int(start_ms * MS),
        end_unix_ns=int(end_ms * MS),
    )


def path_of(spans: list[Span]) -> list[tuple[str, float, float]]:
    names = {s.span_id: s.name for s in spans}
    return [
        (names[seg.span_id], seg.start_unix_ns / MS, seg.end_unix_ns / MS)
        for seg in critical_path(spans).segments
    ]


def self_ms(spans: list[Span]) -> dict[str, float]:
    names = {s.span_id: s.name for s in spans}
    return {names[k]: v / MS for k, v in self_times(spans).items()}


def test_overlapping_children() -> None:
    spans = [
        span("A", 0, 100),
        span("B", 10, 40, "A"),
        span("C", 30, 70, "A"),  # overlaps B
        span("D", 80, 90, "A"),
    ]
    assert self_ms(spans) == {"A": 30, "B": 30, "C": 40, "D": 10}
    assert path_of(spans) == [
        ("A", 0, 30),
        ("C", 30, 70),
        ("A", 70, 80),
        ("D", 80, 90),
        ("A", 90, 100),
    ]
    path = critical_path(spans)
    assert sum(seg.duration_ns for seg in path.segments) == path.duration_ns == 100 * MS


def test_concurrent_children_and_child_overrunning_its_parent() -> None:
    spans = [
        span("R", 0, 100),
        span("X", 10, 80, "R"),
        span("Y", 10, 95, "R"),  # concurrent with X, finishes last: the one R waited for
        span("Y1", 50, 120, "Y"),  # runs past its parent: counted only inside Y
    ]
    assert self_ms(spans) == {"R": 15, "X": 70, "Y": 40, "Y1": 70}
    assert path_of(spans) == [("R", 0, 10), ("Y", 10, 50), ("Y1", 50, 95), ("R", 95, 100)]


def test_back_to_back_children_and_nesting() -> None:
    spans = [
        span("A", 0, 100),
        span("B", 0, 50, "A"),
        span("C", 50, 100, "A"),
        span("C1", 60, 70, "C"),
        span("C2", 65, 90, "C"),  # overlaps C1
    ]
    assert self_ms(spans) == {"A": 0, "B": 50, "C": 20, "C1": 10, "C2": 25}
    assert path_of(spans) == [
        ("B", 0, 50),
        ("C", 50, 65),
        ("C2", 65, 90),
        ("C", 90, 100),
    ]


def test_zero_length_and_orphans_and_empty() -> None:
    spans = [span("A", 0, 10), span("Z", 5, 5, "A"), span("orphan", 2, 4, "missing")]
    assert path_of(spans) == [("A", 0, 10)]
    assert self_ms(spans)["A"] == 10
    with pytest.raises(ValueError, match="empty trace"):
        critical_path([])


def checkout_trace(trace: int, db_ms: float) -> list[Span]:
    """The seed's §6.2 story: a slow payment where the API waits on the database."""
    return [
        span("click pay", 0, 600 + db_ms + 50, service="frontend", trace=trace),
        span("POST /checkout", 500, 550 + db_ms + 45, "click pay", "payment-api", trace),
        span("SELECT payments", 550, 550 + db_ms, "POST /checkout", "payment-api", trace),
        span("gateway charge", 555, 580, "POST /checkout", "payment-api", trace),  # concurrent
        span(
            "INSERT ledger",
            550 + db_ms + 5,
            550 + db_ms + 40,
            "POST /checkout",
            "payment-api",
            trace,
        ),
    ]


def test_dominant_contributor_is_the_database_wait() -> None:
    traces = [checkout_trace(t, db_ms) for t, db_ms in ((1, 4400), (2, 4300), (3, 4500))]
    breakdown = latency_breakdown(traces)
    dominant = breakdown.dominant
    assert dominant is not None
    assert (dominant.service, dominant.name) == ("payment-api", "SELECT payments")
    assert dominant.critical_path_ns == (4400 + 4300 + 4500) * MS
    assert dominant.traces == 3
    assert breakdown.total_critical_path_ns == (5050 + 4950 + 5150) * MS  # the roots
    assert dominant.share == pytest.approx(13200 / 15150)
    assert dominant.describe().startswith("payment-api: 13.2 s in 'SELECT payments'")
    names = [c.name for c in breakdown.contributors]
    assert "gateway charge" not in names  # concurrent with the DB call: never waited on
    assert (
        sum(c.critical_path_ns for c in breakdown.contributors) == breakdown.total_critical_path_ns
    )

    source = InMemorySources()
    source.add_spans([s for t in traces for s in t])
    via_source = breakdown_for(source, SpanQuery(name="POST /checkout", min_duration_ms=4000))
    assert via_source == breakdown


def to_otlp(spans: list[Span]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for s in spans:
        resource_spans = request.resource_spans.add()
        attr = resource_spans.resource.attributes.add()
        attr.key, attr.value.string_value = "service.name", s.service
        out = resource_spans.scope_spans.add().spans.add()
        out.trace_id = bytes.fromhex(s.trace_id)
        out.span_id = bytes.fromhex(s.span_id)
        if s.parent_span_id:
            out.parent_span_id = bytes.fromhex(s.parent_span_id)
        out.name = s.name
        out.start_time_unix_nano = s.start_unix_ns
        out.end_time_unix_nano = s.end_unix_ns
    return request


def test_analysis_over_http(collector: RunningCollector) -> None:
    spans = checkout_trace(7, 4400)
    body = to_otlp(spans).SerializeToString()
    assert collector.post("/v1/traces", body, {"Content-Type": "application/x-protobuf"})[0] == 200
    status, payload = collector.get(f"/api/traces/{7:032x}/critical-path")
    assert status == 200
    answer = json.loads(payload)
    names = [seg["name"] for seg in answer["critical_path"]["segments"]]
    assert names == [
        "click pay",
        "POST /checkout",
        "SELECT payments",
        "POST /checkout",
        "INSERT ledger",
        "POST /checkout",
        "click pay",
    ]
    assert answer["self_time_ns"] == {k: v for k, v in self_times(spans).items()}
    status, payload = collector.get("/api/analysis/latency?service=frontend&max_traces=10")
    assert status == 200
    latency = json.loads(payload)
    assert latency["traces"] == 1
    assert latency["dominant"].startswith("payment-api: 4.4 s in 'SELECT payments'")
