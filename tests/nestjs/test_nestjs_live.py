"""The seed's NestJS payment service in the embedded stack, checked like paychaos' own API.

One stack (``app="nestjs"``) for the module, started and stopped by the package fixture:
bad bodies get problems naming the field; a declined charge (402) is no error span; the
OTLP exporters count their exports on /metrics; the seed's ``bottomk`` names amex after traffic.
The built-in scenarios that apply to it (db-latency, gateway-timeout-paypal,
payment-api-crash, ...) run against it in `make test`'s background suite job
(NESTJS_SUITE in the Makefile), unchanged, through the target model.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from paychaos.checks.trace import calls
from paychaos.contracts.domain import DEFAULT_MIX
from paychaos.contracts.signals import SpanQuery
from paychaos.demo import run_demo
from paychaos.stack.collector.client import CollectorClient
from paychaos.targets.resolve import TargetSession
from tests.live_stack import LiveStack

pytestmark = pytest.mark.integration

BODY: dict[str, Any] = {
    "order_id": "ord_1",
    "customer": {"id": "cus_1", "email": "ana@example.com"},
    "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "9.50"}],
    "amount": "19.00",
    "currency": "USD",
    "method": "visa",
    "payment": {"card_token": "tok_visa_1a2b", "last4": "4242"},
}


def _post(
    url: str, body: bytes, key: str | None, extra: dict[str, str] | None = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    headers = {"Content-Type": "application/json", **(extra or {})}
    if key is not None:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(url + "/api/checkout", body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), json.loads(exc.read())


def test_checkout_is_idempotent_and_bad_bodies_get_problems(nest_stack: LiveStack) -> None:
    api = nest_stack.urls["api"]
    # the gateway simulator declines a share of charges at random: charged (201) or declined (402)
    status, _, first = _post(api, json.dumps(BODY).encode(), "nest-key-0001")
    outcome = {201: "succeeded", 402: "declined"}
    assert status in outcome and first["status"] == outcome[status], (status, first)
    assert first["amount"] == "19.00" and first["card_last4"] == "4242"
    replay_status, headers, again = _post(api, json.dumps(BODY).encode(), "nest-key-0001")
    assert replay_status == status and again == first  # the first outcome, not a second charge
    assert headers.get("Idempotent-Replayed") == "true"
    other = {**BODY, "amount": "20.00", "items": [{**BODY["items"][0], "unit_price": "10.00"}]}
    status, _, reused = _post(api, json.dumps(other).encode(), "nest-key-0001")
    assert status == 422 and reused["type"].endswith("/idempotency-key-reused")

    status, headers, missing = _post(api, json.dumps(BODY).encode(), None)
    assert status == 400 and missing["type"].endswith("/idempotency-key-missing")
    assert headers["Content-Type"].startswith("application/problem+json")
    bad = {**BODY, "method": "bitcoin", "customer": {"id": "cus_1", "email": "nope"}}
    status, _, problem = _post(api, json.dumps(bad).encode(), "nest-key-0002")
    assert status == 422 and problem["title"] == "Invalid request body"
    pointers = {e["pointer"]: e["detail"] for e in problem["errors"]}
    assert pointers["#/method"].startswith("must be one of visa")
    assert pointers["#/customer/email"] == "must be an email address"
    pan = {**BODY, "payment": {"card_token": "4111 1111 1111 1111", "last4": "1111"}}
    status, _, problem = _post(api, json.dumps(pan).encode(), "nest-key-0003")
    assert status == 422 and "never the PAN" in problem["detail"]
    assert "4111 1111" not in json.dumps(problem)
    mismatch = {**BODY, "amount": "18.00"}
    status, _, problem = _post(api, json.dumps(mismatch).encode(), "nest-key-0004")
    assert status == 422 and problem["errors"][0]["pointer"] == "#"
    status, _, problem = _post(api, b'{"order_id": ', "nest-key-0005")
    assert status == 422 and problem["errors"][0]["detail"].startswith("not valid JSON")
    status, _, problem = _post(api, b"x" * (70 * 1024), "nest-key-0006")
    assert status == 413 and problem["type"].endswith("/body-too-large")


def test_a_declined_charge_is_not_an_error_span(nest_stack: LiveStack) -> None:
    # a 402 from the gateway is a business outcome: the Python API leaves its gateway span's
    # status unset; Node's http instrumentation would mark every 4xx of a CLIENT span ERROR
    api = nest_stack.urls["api"]
    trace_id = secrets.token_hex(16)
    declined = {**BODY, "payment": {"card_token": "tok_decline", "last4": "0002"}}
    traceparent = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    status, _, answer = _post(api, json.dumps(declined).encode(), "nest-decline-1", traceparent)
    assert status == 402 and answer["status"] == "declined", (status, answer)
    collector = CollectorClient(nest_stack.urls["collector"])
    query = SpanQuery(service="payment-api", kind="client", trace_id=trace_id)
    deadline = time.monotonic() + 10  # the export batch (every 0.5 s)
    while not (charge := [s for s in collector.find_spans(query) if calls(s, "/v1/charges")]):
        assert time.monotonic() < deadline, f"no gateway CLIENT span in trace {trace_id}"
        time.sleep(0.5)
    [span] = charge
    code = span.attributes.get("http.response.status_code", span.attributes.get("http.status_code"))
    assert code == 402, span
    assert span.status != "error", span


def test_the_sdk_counts_its_exports_on_metrics(nest_stack: LiveStack) -> None:
    # TelemetryExportFailing reads the exporters' own counters, as the Python API shows them:
    # otel_sdk_exporter_{span,log}_exported_total, error_type set on what was not delivered
    api = nest_stack.urls["api"]
    status, _, _ = _post(api, json.dumps(BODY).encode(), "nest-sdk-metrics-1")
    assert status in (201, 402), status
    deadline = time.monotonic() + 10  # the export batch (every 0.5 s), then a scrape
    while True:
        with urllib.request.urlopen(api + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
        delivered = {
            sample.name: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name.startswith("otel_sdk_exporter_")
            and sample.name.endswith("_exported_total")
            and not sample.labels.get("error_type")
        }
        if all(
            delivered.get(f"otel_sdk_exporter_{s}_exported_total", 0) > 0 for s in ("span", "log")
        ):
            break
        assert time.monotonic() < deadline, delivered
        time.sleep(0.5)


def test_the_seed_bottomk_names_amex_after_traffic(nest_stack: LiveStack) -> None:
    lines: list[str] = []
    # a fresh stack: its 24 h window holds this traffic (and the checks above: one visa)
    session = TargetSession(nest_stack.stack.target(), nest_stack.stack.cfg.state_dir, owned=True)
    result = run_demo(session, total=400, concurrency=16, mix=DEFAULT_MIX, out=lines.append)
    assert result.least_used_sent == "amex", lines
    assert result.least_used_by_prometheus == "amex", lines
    assert result.successes_by_prometheus["amex"] > 0, lines
    # the seed's metric came from the NestJS service, its trace from Node's instrumentation
    assert any("pg.query:INSERT" in line for line in lines), lines
    # the gateway call's CLIENT span (Node's, named `POST`) carries the method it charged,
    # as the Python API's does: amex-outage selects the amex calls by it
    collector = CollectorClient(nest_stack.urls["collector"])
    query = SpanQuery(service="payment-api", kind="client", attributes={"payment.method": "amex"})
    deadline = time.monotonic() + 10  # the last export batch (every 0.5 s)
    while not (amex_calls := collector.find_spans(query)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert amex_calls and all(calls(s, "/v1/charges") for s in amex_calls), amex_calls
