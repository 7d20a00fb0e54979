"""Faro RUM payloads in the shape Grafana's Faro web SDK sends them.

The body below follows the SDK's own types (grafana/faro-web-sdk):
``packages/core/src/transports/types.ts`` (``TransportBody``: meta, exceptions, logs,
measurements, traces, events), ``packages/core/src/api/events/types.ts``
(``EventEvent``: name, domain, attributes, timestamp, trace),
``packages/core/src/api/exceptions/types.ts`` (``ExceptionEvent``: type, value,
stacktrace.frames, context, trace), ``packages/core/src/api/measurements/types.ts``
(``MeasurementEvent``: type, values, timestamp), ``packages/core/src/api/logs/types.ts``
(``LogEvent``: context, level, message, timestamp), ``packages/core/src/metas/types.ts``
(``Meta``: sdk, app, user, session, page, browser, view), and the web-vitals
instrumentation (``pushMeasurement({type: 'web-vitals', values: {[indicator]: metric.value}})``).
The seed's §5.2 event: ``faro.api.pushEvent('click_payment_button', {method, cart_value})``.
"""

from __future__ import annotations

import json

import pytest
from collector_harness import RunningCollector

from paychaos.contracts.signals import RumQuery, SpanQuery
from paychaos.stack.collector.client import CollectorClient

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"

FARO_BODY = {
    "meta": {
        "sdk": {"name": "@grafana/faro-web-sdk", "version": "1.4.2", "integrations": []},
        "app": {"name": "shop-frontend", "version": "1.0.0", "environment": "production"},
        "user": {"id": "u-42"},
        "session": {"id": "sess-123", "attributes": {"plan": "free"}},
        "page": {"id": "p-1", "url": "https://shop.example.com/checkout?step=pay"},
        "browser": {"name": "Chrome", "version": "120", "os": "Linux", "mobile": False},
        "view": {"name": "checkout"},
    },
    "events": [
        {
            "name": "click_payment_button",
            "domain": "checkout",
            "attributes": {"method": "paypal", "cart_value": "100.00"},
            "timestamp": "2024-05-01T10:00:00.000Z",
            "trace": {"trace_id": TRACE_ID, "span_id": SPAN_ID},
        },
        {
            "name": "click_payment_button",
            "attributes": {"method": "visa", "cart_value": "35.50"},
            "timestamp": "2024-05-01T10:00:01.000Z",
        },
    ],
    "measurements": [
        {"type": "web-vitals", "values": {"lcp": 2800.5}, "timestamp": "2024-05-01T10:00:02.000Z"},
        {"type": "web-vitals", "values": {"cls": 0.12}, "timestamp": "2024-05-01T10:00:02.100Z"},
        {"type": "web-vitals", "values": {"inp": 180}, "timestamp": "2024-05-01T10:00:02.200Z"},
    ],
    "exceptions": [
        {
            "type": "TypeError",
            "value": "Cannot read properties of undefined (reading 'token')",
            "timestamp": "2024-05-01T10:00:03.000Z",
            "stacktrace": {
                "frames": [
                    {
                        "filename": "https://shop.example.com/static/js/main.js",
                        "function": "handlePay",
                        "lineno": 10,
                        "colno": 5,
                    },
                    {
                        "filename": "https://shop.example.com/static/js/vendor.js",
                        "function": "HTMLButtonElement.onclick",
                        "lineno": 2,
                        "colno": 17731,
                        "module": "vendor",
                    },
                    {"filename": "<anonymous>", "function": "?"},
                ]
            },
            "context": {"method": "paypal", "screen": "checkout"},
            "trace": {"trace_id": TRACE_ID, "span_id": SPAN_ID},
        }
    ],
    "logs": [
        {
            "message": "paypal popup blocked",
            "level": "warn",
            "context": {"method": "paypal"},
            "timestamp": "2024-05-01T10:00:04.000Z",
        }
    ],
    "traces": {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": "shop-frontend"}}
                    ]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "@grafana/faro-web-tracing"},
                        "spans": [
                            {
                                "traceId": TRACE_ID,
                                "spanId": SPAN_ID,
                                "name": "HTTP POST",
                                "kind": 3,
                                "startTimeUnixNano": "1714557600000000000",
                                "endTimeUnixNano": "1714557600600000000",
                                "attributes": [
                                    {"key": "http.url", "value": {"stringValue": "/api/pay"}}
                                ],
                                "status": {"code": 0},
                            }
                        ],
                    }
                ],
            }
        ]
    },
}


def test_faro_payload_is_stored_and_queryable(collector: RunningCollector) -> None:
    status, _, body = collector.post(
        "/collect/my-app-key", json.dumps(FARO_BODY).encode(), {"Content-Type": "application/json"}
    )
    assert status == 202, body
    client = CollectorClient(collector.base_url)

    clicks = client.find_rum(RumQuery(kind="event", name="click_payment_button"))
    assert [c.attributes["method"] for c in clicks] == ["visa", "paypal"]  # newest first
    paypal = client.find_rum(RumQuery(name="click_payment_button", attributes={"method": "paypal"}))
    assert len(paypal) == 1
    assert paypal[0].trace_id == TRACE_ID
    assert paypal[0].session_id == "sess-123"
    assert paypal[0].page_url == "https://shop.example.com/checkout?step=pay"
    assert paypal[0].app_name == "shop-frontend"
    assert paypal[0].time_unix_ns == 1_714_557_600_000_000_000
    assert paypal[0].attributes["event.domain"] == "checkout"

    [exception] = client.find_rum(RumQuery(kind="exception"))
    assert exception.name == "TypeError"
    assert exception.message.startswith("Cannot read properties")
    assert dict(exception.attributes) == {"method": "paypal", "screen": "checkout"}
    sent_frames = FARO_BODY["exceptions"][0]["stacktrace"]["frames"]  # type: ignore[index]
    assert [dict(f) for f in exception.frames] == sent_frames  # every frame, as Faro sent it

    # each web vital under its own name, its value under Faro's key
    [lcp] = client.find_rum(RumQuery(kind="measurement", name="LCP"))
    assert dict(lcp.values) == {"lcp": 2800.5}
    assert lcp.attributes["measurement.type"] == "web-vitals"
    assert lcp.time_unix_ns == 1_714_557_602_000_000_000
    [cls] = client.find_rum(RumQuery(kind="measurement", name="CLS"))
    assert dict(cls.values) == {"cls": 0.12}
    [inp] = client.find_rum(RumQuery(kind="measurement", name="INP"))
    assert dict(inp.values) == {"inp": 180}
    assert client.find_rum(RumQuery(kind="measurement", name="web-vitals")) == []
    [log] = client.find_rum(RumQuery(kind="log", attributes={"method": "paypal"}))
    assert (log.name, log.message) == ("warn", "paypal popup blocked")
    assert client.find_rum(RumQuery(session_id="other")) == []
    assert len(client.find_rum(RumQuery(since_unix_s=1_714_557_603))) == 2

    [browser_span] = client.find_spans(SpanQuery(service="shop-frontend"))
    assert (browser_span.trace_id, browser_span.span_id) == (TRACE_ID, SPAN_ID)
    assert browser_span.duration_ms == 600
    assert browser_span.kind == "client"


def test_faro_derived_metrics(collector: RunningCollector) -> None:
    for _ in range(2):
        status, _, _ = collector.post(
            "/collect", json.dumps(FARO_BODY).encode(), {"Content-Type": "text/plain;charset=UTF-8"}
        )
        assert status == 202
    assert collector.metric('rum_payment_button_clicks_total{method="paypal"}') == 2
    assert collector.metric('rum_payment_button_clicks_total{method="visa"}') == 2
    assert collector.metric('rum_exceptions_total{method="paypal",page="/checkout"}') == 2
    assert collector.metric('rum_web_vital_seconds_count{vital="lcp"}') == 2
    assert collector.metric('rum_web_vital_seconds_sum{vital="lcp"}') == pytest.approx(2 * 2.8005)
    assert collector.metric('rum_web_vital_seconds_bucket{le="3.0",vital="lcp"}') == 2
    assert collector.metric('rum_web_vital_seconds_bucket{le="2.5",vital="lcp"}') == 0
    assert collector.metric('rum_web_vital_seconds_count{vital="inp"}') == 2
    assert collector.metric("rum_web_vital_cls_count") == 2
    assert collector.metric('collector_items_accepted_total{signal="rum"}') == 2 * 7


def test_cors_preflight_and_headers(collector: RunningCollector) -> None:
    headers = {
        "Origin": "https://shop.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-faro-session-id",
    }
    status, response_headers, _ = collector.post("/collect", b"", headers, method="OPTIONS")
    assert status == 200
    assert response_headers["access-control-allow-origin"] == "*"
    assert "POST" in response_headers["access-control-allow-methods"]
    status, response_headers, _ = collector.post(
        "/collect/key",
        b'{"meta": {}}',
        {"Content-Type": "application/json", "Origin": "https://shop.example.com"},
    )
    assert status == 202
    assert response_headers["access-control-allow-origin"] == "*"


def test_a_measurement_with_several_vitals_is_stored_once_per_vital(
    collector: RunningCollector,
) -> None:
    body = {
        "meta": {"app": {"name": "shop"}, "page": {"url": "https://shop.example/checkout"}},
        "measurements": [
            {
                "type": "web-vitals",
                "values": {"lcp": 900.0, "inp": 40.0, "cls": 0.02, "ttfb": 120.0, "fcp": 300.0},
                "context": {"method": "amex"},
            },
            {"type": "web-vitals", "values": {"lcp": 1200.0, "delta": 300.0}},
            {"type": "cart-size", "values": {"items": 3}},
        ],
    }
    status, _, answer = collector.post(
        "/collect", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    assert status == 202, answer
    client = CollectorClient(collector.base_url)
    for name, key, value in [
        ("INP", "inp", 40.0),
        ("CLS", "cls", 0.02),
        ("TTFB", "ttfb", 120.0),
        ("FCP", "fcp", 300.0),
    ]:
        [item] = client.find_rum(RumQuery(kind="measurement", name=name))
        assert dict(item.values) == {key: value}
        assert item.attributes["method"] == "amex"
    lcps = client.find_rum(RumQuery(kind="measurement", name="LCP"))
    assert sorted(dict(item.values)["lcp"] for item in lcps) == [900.0, 1200.0]
    assert {"lcp": 1200.0, "delta": 300.0} in [dict(item.values) for item in lcps]
    amex_lcp = client.find_rum(
        RumQuery(kind="measurement", name="LCP", attributes={"method": "amex"})
    )
    assert [dict(item.values) for item in amex_lcp] == [{"lcp": 900.0}]
    [cart] = client.find_rum(RumQuery(kind="measurement", name="cart-size"))
    assert dict(cart.values) == {"items": 3}
    assert collector.metric('rum_web_vital_seconds_count{vital="lcp"}') == 2
    assert collector.metric('rum_web_vital_seconds_count{vital="ttfb"}') == 1
    assert collector.metric("rum_web_vital_cls_count") == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"events": [], "measurements": []}', 'it has no "meta"'),
        (b'{"resourceSpans": []}', 'it has no "meta"'),
        (b"[1, 2]", "the body must be a JSON object"),
        (b'{"meta": {},\n "events": [}', "the body is not JSON: line 2, column"),
        (b"", "the body is not JSON: it is empty"),
        (b'{"meta": {}, "exceptions": [{"value": "boom"}]}', "exceptions.0.type: Field required"),
        (b'{"meta": {}, "measurements": [{"type": "web-vitals", "values": 5}]}', "values"),
        (b'{"meta": "shop"}', "meta: must be a JSON object"),
        (
            b'{"meta": {}, "traces": {"resourceSpans": [{"scopeSpans": 7}]}}',
            "traces: not an OTLP trace export: resourceSpans.scopeSpans: must be a JSON array",
        ),
    ],
)
def test_a_body_that_is_not_a_faro_payload_is_a_400_saying_what_is_wrong(
    collector: RunningCollector, body: bytes, words: str
) -> None:
    status, _, answer = collector.post("/collect", body, {"Content-Type": "application/json"})
    text = answer.decode()
    assert status == 400, text
    assert text.startswith("not a Faro payload: ") and words in text, text
    assert text.count("not a Faro payload") == 1, text
    for internal in ("pydantic", "https://", "Value error", "For further", "(char ", "dict"):
        assert internal not in text, text
