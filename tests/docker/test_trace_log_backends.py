"""TraceQL/LogQL builders and response parsers, against responses in the documented formats.

No Tempo or Loki runs here: the sources get an injected transport that answers
recorded/hand-built bodies (Tempo ``/api/search`` and ``/api/traces/<id>`` v1
``batches`` with base64 ids, v2 ``trace.resourceSpans`` with hex ids; Loki
``query_range`` ``streams`` with structured metadata, plain and categorised).
"""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from paychaos.contracts.errors import InvalidInput, StackError
from paychaos.contracts.signals import LogQuery, LogSource, SpanQuery, TraceSource
from paychaos.stack.backends.base import SignalSources
from paychaos.stack.backends.loki import (
    LokiLogSource,
    logql,
    query_range_params,
    records_from_response,
)
from paychaos.stack.backends.tempo import (
    TempoTraceSource,
    search_params,
    spans_from_trace,
    trace_ids_from_search,
    traceql,
)
from paychaos.stack.monitoring.promapi import HttpResponse

TRACE = "0af7651916cd43dd8448eb211c80319c"
ROOT, DB, GW = "b7ad6b7169203331", "00f067aa0ba902b7", "53995c3f42cd8ad8"
T0 = 1_750_000_000_000_000_000


def b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def otlp_span(span_id, parent, name, kind, start_ms, dur_ms, status=0, attrs=(), b64ids=True):
    enc = b64 if b64ids else (lambda x: x)
    span = {
        "traceId": enc(TRACE),
        "spanId": enc(span_id),
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(T0 + start_ms * 1_000_000),
        "endTimeUnixNano": str(T0 + (start_ms + dur_ms) * 1_000_000),
        "attributes": [{"key": k, "value": v} for k, v in attrs],
        "status": {"code": status} if status else {},
    }
    if parent:
        span["parentSpanId"] = enc(parent)
    return span


def resource(service, spans):
    return {
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "paychaos"}, "spans": spans}],
    }


def tempo_trace_v1():
    """``GET /api/traces/<id>`` as Tempo answers it: ``batches``, base64 ids, enum names."""
    return {
        "batches": [
            resource(
                "payment-api",
                [
                    otlp_span(
                        ROOT,
                        None,
                        "POST /api/checkout",
                        "SPAN_KIND_SERVER",
                        0,
                        2600,
                        status="STATUS_CODE_ERROR",
                        attrs=[("http.status_code", {"intValue": "504"})],
                    ),
                    otlp_span(DB, ROOT, "payments insert", "SPAN_KIND_CLIENT", 5, 20),
                ],
            ),
            resource(
                "gateway",
                [
                    otlp_span(
                        GW,
                        ROOT,
                        "POST /v1/charges",
                        "SPAN_KIND_SERVER",
                        30,
                        2500,
                        attrs=[("payment.method", {"stringValue": "visa"})],
                    )
                ],
            ),
        ]
    }


def tempo_search():
    return {
        "traces": [
            {
                "traceID": TRACE.lstrip("0"),
                "rootServiceName": "payment-api",
                "rootTraceName": "POST /api/checkout",
                "startTimeUnixNano": str(T0),
                "durationMs": 2600,
                "spanSets": [
                    {
                        "spans": [
                            {
                                "spanID": ROOT,
                                "startTimeUnixNano": str(T0),
                                "durationNanos": "2600000000",
                            }
                        ],
                        "matched": 1,
                    }
                ],
            }
        ],
        "metrics": {"inspectedTraces": 3, "inspectedBytes": "1024"},
    }


class Recorder:
    """A transport answering by path; records every URL asked."""

    def __init__(self, routes):
        self.routes = routes
        self.urls: list[str] = []

    def __call__(self, method: str, url: str, timeout_s: float) -> HttpResponse:
        self.urls.append(url)
        path = urlsplit(url).path
        for prefix, (status, body) in self.routes.items():
            if path.startswith(prefix):
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                return HttpResponse(status, raw)
        return HttpResponse(404, b"not found")


# ------------------------------------------------------------------ TraceQL


def test_traceql_empty_query_selects_every_span():
    assert traceql(SpanQuery()) == "{ }"


def test_traceql_carries_every_filter_with_units():
    q = SpanQuery(
        service="payment-api",
        name='POST "/api"',
        status="error",
        kind="server",
        min_duration_ms=2000,
        max_duration_ms=1500.5,
        attributes={"payment.method": "visa", "retry": True, "http.status_code": 504},
    )
    assert traceql(q) == (
        '{ resource.service.name = "payment-api" && name = "POST \\"/api\\"" && status = error'
        " && kind = server && duration >= 2000ms && duration <= 1500500us"
        ' && (span.http.status_code = 504 || span.http.status_code = "504")'
        ' && span.payment.method = "visa" && span.retry = true }'
    )


def test_traceql_numeric_string_matches_both_types():
    # the reference semantics compare text: "500" matches 500
    assert '(span.code = "500" || span.code = 500)' in traceql(
        SpanQuery(attributes={"code": "500"})
    )


def test_traceql_skips_what_it_cannot_express_and_leaves_it_to_matches():
    assert traceql(SpanQuery(attributes={"tags": ["a", "b"]})) == "{ }"


def test_search_params_window_limit_and_default_lookback():
    params = search_params(
        SpanQuery(limit=20, since_unix_s=100.7, until_unix_s=200.2), now_unix_s=0
    )
    assert params["start"] == "100" and params["end"] == "201"
    assert params["limit"] == "20" and params["spss"] == "20"
    default = search_params(SpanQuery(), now_unix_s=10_000)
    assert default["start"] == str(10_000 - 3600) and default["end"] == "10001"


# ------------------------------------------------------------------ Tempo parsers


def test_search_ids_are_padded_lowercase_hex():
    assert trace_ids_from_search(tempo_search()) == [TRACE]
    assert trace_ids_from_search({"traces": [{"traceID": "zz"}]}) == []
    with pytest.raises(StackError):
        trace_ids_from_search([1, 2])


def test_trace_v1_base64_ids_enum_names_and_services():
    spans = {s.span_id: s for s in spans_from_trace(tempo_trace_v1())}
    assert set(spans) == {ROOT, DB, GW}
    root = spans[ROOT]
    assert (root.trace_id, root.service, root.kind, root.status) == (
        TRACE,
        "payment-api",
        "server",
        "error",
    )
    assert root.parent_span_id is None and root.duration_ms == pytest.approx(2600)
    assert root.attributes["http.status_code"] == 504
    assert spans[GW].service == "gateway" and spans[GW].parent_span_id == ROOT


def test_trace_v2_hex_ids_and_integer_enums():
    payload = {
        "trace": {
            "resourceSpans": [
                resource(
                    "payment-api",
                    [otlp_span(ROOT, None, "POST /api/checkout", 2, 0, 10, b64ids=False)],
                )
            ]
        }
    }
    (span,) = spans_from_trace(payload)
    assert span.span_id == ROOT and span.kind == "server" and span.trace_id == TRACE


def test_trace_garbage_is_a_stack_error_and_404_is_empty():
    with pytest.raises(StackError):
        spans_from_trace({"batches": [{"scopeSpans": [{"spans": [{"kind": {"x": 1}}]}]}]})
    source = TempoTraceSource("http://tempo:3200", transport=Recorder({}))
    assert source.get_trace(TRACE) == []


def test_find_spans_searches_then_fetches_and_keeps_reference_semantics():
    transport = Recorder(
        {"/api/search": (200, tempo_search()), f"/api/traces/{TRACE}": (200, tempo_trace_v1())}
    )
    source = TempoTraceSource("http://tempo:3200", transport=transport, clock=lambda: 1e9)
    assert isinstance(source, TraceSource)
    slow = source.find_spans(SpanQuery(service="payment-api", min_duration_ms=2000))
    assert [s.span_id for s in slow] == [ROOT]  # the DB span (20 ms) is not returned
    query = parse_qs(urlsplit(transport.urls[0]).query)
    assert query["q"] == ['{ resource.service.name = "payment-api" && duration >= 2000ms }']
    # newest start first, whole trace earliest first
    everything = source.find_spans(SpanQuery())
    assert [s.span_id for s in everything] == [GW, DB, ROOT]
    assert [s.span_id for s in source.get_trace(TRACE.upper())] == [ROOT, DB, GW]


def test_find_spans_by_trace_id_skips_search():
    transport = Recorder({f"/api/traces/{TRACE}": (200, tempo_trace_v1())})
    source = TempoTraceSource("http://tempo:3200", transport=transport)
    found = source.find_spans(SpanQuery(trace_id=TRACE, service="gateway"))
    assert [s.span_id for s in found] == [GW]
    assert all("/api/search" not in url for url in transport.urls)


def test_tempo_http_error_is_a_stack_error_and_bad_url_invalid():
    source = TempoTraceSource(
        "http://tempo:3200", transport=Recorder({"/api/search": (500, b"boom")})
    )
    with pytest.raises(StackError, match="HTTP 500: boom"):
        source.find_spans(SpanQuery(service="x"))
    with pytest.raises(InvalidInput):
        TempoTraceSource("tempo:3200")


# ------------------------------------------------------------------ LogQL


def test_logql_selector_filters_level_range_and_sanitised_attributes():
    q = LogQuery(
        service="payment-api",
        level="warn",
        trace_id=TRACE.upper(),
        body_contains='say "hi"',
        attributes={"http.status_code": 504, "payment.method": "visa"},
    )
    assert logql(q) == (
        '{service_name="payment-api"} |= "say \\"hi\\"" | trace_id="' + TRACE + '"'
        " | severity_number >= 13 and severity_number <= 16"
        ' | http_status_code="504" | payment_method="visa"'
    )
    assert logql(LogQuery()) == '{service_name=~".+"}'


def test_query_range_params_are_nanoseconds_backward():
    params = query_range_params(LogQuery(since_unix_s=10, until_unix_s=20, limit=5), now_unix_s=0)
    assert params["start"] == "10000000000" and params["end"] == "20000000000"
    assert params["direction"] == "backward" and params["limit"] == "5"


def loki_streams():
    return {
        "status": "success",
        "data": {
            "resultType": "streams",
            "result": [
                {
                    "stream": {"service_name": "payment-api", "deployment_environment": "sim"},
                    "values": [
                        [
                            str(T0 + 2),
                            "gateway timeout for visa",
                            {
                                "trace_id": TRACE,
                                "span_id": ROOT,
                                "severity_text": "ERROR",
                                "severity_number": "17",
                                "payment_method": "visa",
                            },
                        ],
                        [str(T0 + 1), "checkout started", {"severity_number": "9"}],
                    ],
                },
                {
                    "stream": {"service_name": "gateway"},
                    "values": [
                        [
                            str(T0 + 3),
                            "charge slow",
                            {
                                "structuredMetadata": {"severity_text": "WARN"},
                                "parsed": {"payment_method": "amex"},
                            },
                        ],
                        [str(T0 + 4), "no metadata at all"],
                    ],
                },
            ],
            "stats": {},
        },
    }


def test_records_from_streams_with_structured_metadata():
    records = {r.body: r for r in records_from_response(loki_streams())}
    err = records["gateway timeout for visa"]
    assert (err.level, err.severity_number, err.service) == ("error", 17, "payment-api")
    assert (err.trace_id, err.span_id) == (TRACE, ROOT)
    assert err.attributes["payment_method"] == "visa"
    assert "trace_id" not in err.attributes and "service_name" not in err.attributes
    assert records["checkout started"].level == "info"
    slow = records["charge slow"]  # categorize-labels form
    assert slow.level == "warn" and slow.attributes["payment_method"] == "amex"
    assert records["no metadata at all"].level == "info"


def test_loki_error_and_wrong_result_type():
    with pytest.raises(StackError):
        records_from_response({"status": "error", "error": "parse error"})
    with pytest.raises(StackError, match="expected streams"):
        records_from_response({"status": "success", "data": {"resultType": "matrix"}})


def test_find_logs_queries_loki_and_matches_dotted_attribute_names():
    transport = Recorder({"/loki/api/v1/query_range": (200, loki_streams())})
    source = LokiLogSource("http://loki:3100", transport=transport, clock=lambda: 1e9)
    assert isinstance(source, LogSource)
    found = source.find_logs(LogQuery(attributes={"payment.method": "visa"}))
    assert [r.body for r in found] == ["gateway timeout for visa"]
    sent = parse_qs(urlsplit(transport.urls[0]).query)["query"][0]
    assert sent == '{service_name=~".+"} | payment_method="visa"'
    newest_first = source.find_logs(LogQuery(limit=2))
    assert [r.body for r in newest_first] == ["no metadata at all", "charge slow"]


def test_signal_sources_route_each_protocol():
    transport = Recorder(
        {
            "/loki/api/v1/query_range": (200, loki_streams()),
            f"/api/traces/{TRACE}": (200, tempo_trace_v1()),
        }
    )
    tempo = TempoTraceSource("http://tempo:3200", transport=transport)
    loki = LokiLogSource("http://loki:3100", transport=transport)

    class Nothing:
        def find_rum(self, query):
            return []

        def find_alert_notifications(self, query):
            return []

    sources = SignalSources(traces=tempo, logs=loki, rum=Nothing(), notifications=Nothing())
    assert len(sources.get_trace(TRACE)) == 3
    assert len(sources.find_logs(LogQuery(service="gateway"))) == 2
    chosen = SignalSources.for_urls(
        {"collector": "http://127.0.0.1:1", "tempo": "http://t:3200", "loki": "http://l:3100"}
    )
    assert isinstance(chosen.traces, TempoTraceSource) and isinstance(chosen.logs, LokiLogSource)
