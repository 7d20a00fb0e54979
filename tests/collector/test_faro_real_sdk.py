"""The collector's Faro parser on bodies the real Grafana Faro web SDK (2.12.1) sent.

The bodies in ``faro_sdk/`` were captured from the checkout page (``stack/webapp``) in
headless Chromium, posting to a recording server instead of the collector: what
``@grafana/faro-web-sdk`` and ``@grafana/faro-web-tracing`` really put on the wire
(``meta`` with ``sdk``/``browser``/``os``, events with ``domain: "browser"``, web
vitals with their attribution companions and string context, OTLP JSON traces
with ``flags`` and integer ``kind``). ``payload-001``: a checkout whose fetch the
API refused (no CORS for that origin); ``payload-002``: the traces of that click;
``payload-004``: the forced ``TypeError``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paychaos.stack.collector import faro, otlp

HERE = Path(__file__).parent / "faro_sdk"


def _payload(name: str) -> faro.FaroPayload:
    return faro.parse_payload((HERE / f"{name}.json").read_bytes())


@pytest.mark.parametrize("name", ["payload-001", "payload-002", "payload-004"])
def test_every_real_body_parses_with_its_meta(name: str) -> None:
    payload = _payload(name)
    assert payload.meta.app.name == "shop-frontend"
    assert payload.meta.session.id
    assert payload.meta.page.url and payload.meta.page.url.startswith("http://127.0.0.1:")
    raw = json.loads((HERE / f"{name}.json").read_text())
    items = faro.rum_items(payload)
    sent = sum(len(raw.get(key, [])) for key in ("events", "exceptions", "logs"))
    vitals = sum(
        len([k for k in m["values"] if k in faro.WEB_VITALS]) for m in raw.get("measurements", [])
    )
    assert len(items) == sent + vitals  # nothing dropped, one item per vital


def test_the_click_event_and_the_error_with_context() -> None:
    items = faro.rum_items(_payload("payload-001"))
    click = next(i for i in items if i.name == "click_payment_button")
    assert click.kind == "event"
    assert click.attributes == {
        "method": "visa",
        "cart_value": "100.00",
        "event.domain": "browser",
    }
    error = next(i for i in items if i.kind == "exception")
    assert (error.name, error.message) == ("Error", "checkout attempt failed with HTTP 0")
    assert error.attributes == {"method": "visa", "screen": "checkout"}
    assert [f["function"] for f in error.frames] == ["T", "async onClick"]
    assert all(f["filename"].endswith("/app.js") and f["lineno"] == 37 for f in error.frames)


def test_a_real_web_vital_keeps_its_attribution() -> None:
    items = faro.rum_items(_payload("payload-001"))
    lcp = next(i for i in items if i.name == "LCP")
    assert lcp.values["lcp"] == 944
    assert lcp.values["time_to_first_byte"] == 203.5  # a companion, kept as sent
    assert lcp.attributes["rating"] == "good"
    assert lcp.attributes["element"] == "#root>main>h1"


def test_the_forced_type_error_carries_its_trace() -> None:
    items = faro.rum_items(_payload("payload-004"))
    error = next(i for i in items if i.kind == "exception")
    assert error.name == "TypeError"
    assert error.attributes == {"method": "crypto", "screen": "checkout"}
    assert error.trace_id and len(error.trace_id) == 32


def test_the_browser_traces_become_spans_of_one_trace() -> None:
    spans = otlp.spans_from_request(faro.trace_request(_payload("payload-002")))
    assert spans.rejected == 0
    by_name = {s.name: s for s in spans.items}
    assert set(by_name) == {"checkout", "POST"}
    checkout, fetch = by_name["checkout"], by_name["POST"]
    assert checkout.service == fetch.service == "shop-frontend"
    assert fetch.trace_id == checkout.trace_id
    assert fetch.parent_span_id == checkout.span_id
    assert fetch.kind == "client"
    assert str(fetch.attributes["url.full"]).endswith("/api/checkout")
    assert fetch.status == "error"  # the API refused the origin: status 0
