"""The payment API against the real embedded stack: codes, idempotency, telemetry, hygiene."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import checkout_body, eventually, http, new_key

from paychaos.contracts.signals import LogQuery, SpanQuery
from paychaos.loadgen import drive
from paychaos.stack.collector.client import CollectorClient
from paychaos.stack.embedded import EmbeddedStack
from paychaos.stack.monitoring.processes import check_config
from paychaos.stack.monitoring.promapi import PrometheusClient
from paychaos.stack.state import admin_token_file

PAN = "4111111111111111"  # a Luhn-valid test card number


def _checkout(stack: EmbeddedStack, body: dict | bytes, key: str | None, **headers: str):
    hdrs = dict(headers)
    if key is not None:
        hdrs["Idempotency-Key"] = key
    return http("POST", stack.urls["api"] + "/api/checkout", body, hdrs)


def _ledger(stack: EmbeddedStack, key: str) -> list[dict]:
    _, _, payload = http("GET", stack.urls["gateway"] + f"/v1/charges?idempotency_key={key}")
    assert isinstance(payload, dict), payload
    return list(payload["data"])


def _admin(stack: EmbeddedStack, method: str, path: str, body: dict | None = None):
    token = admin_token_file(stack.cfg.state_dir).read_text().strip()
    return http(method, stack.urls["gateway"] + path, body, {"Authorization": f"Bearer {token}"})


@pytest.fixture
def paypal_hangs(stack: EmbeddedStack) -> Iterator[None]:
    status, _, body = _admin(stack, "POST", "/admin/behaviours",
                             {"method": "paypal", "timeout_rate": 1.0, "ttl_s": 60})  # fmt: skip
    assert status == 201, body
    try:
        yield
    finally:
        _admin(stack, "DELETE", f"/admin/behaviours/{body['id']}")


@pytest.fixture
def database_cut(stack: EmbeddedStack) -> Iterator[None]:
    proxy = stack.urls["proxy"] + "/proxies/postgres"
    status, _, body = http("POST", proxy, {"enabled": False})
    assert status == 200, body
    try:
        yield
    finally:
        http("POST", proxy, {"enabled": True})


def test_success_answers_201_with_the_payment(stack: EmbeddedStack) -> None:
    status, _, body = _checkout(stack, checkout_body("visa"), new_key())
    assert status == 201, body
    assert body["status"] == "succeeded"
    assert body["gateway_charge_id"].startswith("ch_")
    assert body["card_last4"] == "4242"
    status, _, fetched = http("GET", stack.urls["api"] + f"/api/payments/{body['id']}")
    assert status == 200 and fetched["status"] == "succeeded"


def test_decline_answers_402(stack: EmbeddedStack) -> None:
    status, _, body = _checkout(stack, checkout_body("visa", card_token="tok_decline"), new_key())
    assert status == 402, body
    assert body["status"] == "declined" and body["decline_code"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["items"][0].update(quantity=0), "items.0.quantity"),
        (lambda b: b.update(method="cheque"), "method"),
        (lambda b: b.update(amount="20.00"), "amount"),
        (lambda b: b["payment"].update(card_token=PAN), "payment.card_token"),
        (lambda b: b.pop("customer"), "customer"),
    ],
)
def test_invalid_body_is_a_422_problem_naming_the_field(
    stack: EmbeddedStack, mutate, field
) -> None:
    body = checkout_body("visa")
    mutate(body)
    status, headers, problem = _checkout(stack, body, new_key())
    assert status == 422, problem
    assert headers["content-type"].startswith("application/problem+json")
    assert problem["status"] == 422
    fields = [err["field"] for err in problem["errors"]]
    assert any(f == field or f.startswith(field) or field in problem["detail"] for f in fields), (
        problem
    )


def test_malformed_json_and_missing_key(stack: EmbeddedStack) -> None:
    status, _, problem = _checkout(stack, b"{not json", new_key())
    assert status == 422 and problem["type"].endswith("invalid-request")
    status, _, problem = _checkout(stack, b'{\n  "amount": "1.00",\n  "items": [,]\n}', new_key())
    assert status == 422, problem
    assert "line 3, column 13" in problem["detail"], problem
    assert [e["pointer"] for e in problem["errors"]] == ["#"], problem
    for internal in ("https://errors", "Value error", "dictionary"):
        assert internal not in str(problem)
    status, _, problem = _checkout(stack, checkout_body(), None)
    assert status == 400 and "Idempotency-Key" in problem["title"]


def test_oversized_body_is_413(stack: EmbeddedStack) -> None:
    body = checkout_body()
    body["order_id"] = "x" * 70_000
    status, _, problem = _checkout(stack, body, new_key())
    assert status == 413, problem


def test_retry_with_same_key_replays_and_never_charges_twice(stack: EmbeddedStack) -> None:
    key, body = new_key(), checkout_body("amex")
    first = _checkout(stack, body, key)
    second = _checkout(stack, body, key)
    assert first[0] == second[0] == 201
    assert second[2] == first[2]
    assert second[1].get("idempotent-replayed") == "true"
    charges = _ledger(stack, key)
    assert len(charges) == 1 and charges[0]["status"] == "succeeded"


def test_same_key_with_another_body_is_refused(stack: EmbeddedStack) -> None:
    key = new_key()
    assert _checkout(stack, checkout_body("visa"), key)[0] == 201
    status, _, problem = _checkout(stack, checkout_body("paypal"), key)
    assert status == 422 and problem["type"].endswith("idempotency-key-reused")


def test_gateway_timeout_is_504_unknown_then_retry_charges_once(
    stack: EmbeddedStack, paypal_hangs: None
) -> None:
    key, body = new_key(), checkout_body("paypal")
    status, _, problem = _checkout(stack, body, key)
    assert status == 504, problem
    assert problem["payment_status"] == "unknown"
    payment_id = problem["payment_id"]
    assert http("GET", stack.urls["api"] + f"/api/payments/{payment_id}")[2]["status"] == "unknown"
    # visa is unaffected while paypal hangs
    assert _checkout(stack, checkout_body("visa"), new_key())[0] == 201
    _admin(stack, "DELETE", "/admin/behaviours")
    status, _, payment = _checkout(stack, body, key)
    assert status == 201, payment
    assert payment["id"] == payment_id
    assert len([c for c in _ledger(stack, key) if c["status"] == "succeeded"]) == 1


def test_database_down_is_503_and_readyz_fails(stack: EmbeddedStack, database_cut: None) -> None:
    status, _, problem = _checkout(stack, checkout_body(), new_key())
    assert status == 503, problem
    assert problem["type"].endswith("database-unavailable")
    assert http("GET", stack.urls["api"] + "/readyz")[0] == 503
    assert http("GET", stack.urls["api"] + "/healthz")[0] == 200


def test_readyz_recovers_when_the_database_is_back(stack: EmbeddedStack) -> None:
    status = eventually(lambda: http("GET", stack.urls["api"] + "/readyz")[0], lambda s: s == 200)
    assert status == 200


def test_one_trace_holds_api_db_and_gateway_spans_and_logs_carry_it(stack: EmbeddedStack) -> None:
    trace_id = f"{random.getrandbits(128):032x}"
    parent = f"{random.getrandbits(64):016x}"
    status, _, _ = _checkout(stack, checkout_body("crypto"), new_key(),
                             traceparent=f"00-{trace_id}-{parent}-01")  # fmt: skip
    assert status in (201, 402)
    collector = CollectorClient(stack.urls["collector"])
    spans = eventually(
        lambda: collector.get_trace(trace_id),
        lambda s: {x.service for x in s} >= {"payment-api", "payment-gateway"} and len(s) >= 5,
    )
    by_name = {(s.service, s.name): s for s in spans}
    server = by_name[("payment-api", "POST /api/checkout")]
    assert server.parent_span_id == parent and server.kind == "server"
    db_spans = [s for s in spans if s.attributes.get("db.system") == "postgresql"]
    assert {s.name for s in db_spans} >= {"INSERT payments", "UPDATE payments"}
    client = by_name[("payment-api", "POST /v1/charges")]
    gateway = next(s for s in spans if s.service == "payment-gateway")
    assert gateway.parent_span_id == client.span_id
    assert all(s.trace_id == trace_id for s in spans)
    logs = eventually(
        lambda: collector.find_logs(LogQuery(trace_id=trace_id)),
        lambda records: any(r.service == "payment-api" for r in records),
    )
    assert any(r.service == "payment-api" and r.trace_id == trace_id for r in logs)


def test_card_testing_is_declined_by_the_processor_and_names_its_customer(
    stack: EmbeddedStack,
) -> None:
    """One customer, a new card each time: the gateway's screen declines past 10 cards;
    the checkout span and the decline log carry the customer id; /metrics does not."""
    customer = f"cus_{random.getrandbits(40):010x}"
    statuses, codes = [], []
    for n in range(13):
        body = checkout_body("visa", card_token=f"tok_visa_{n:012x}", last4="0002")
        body["customer"]["id"] = customer
        status, _, answer = _checkout(stack, body, new_key())
        statuses.append(status)
        codes.append(answer.get("decline_code") if isinstance(answer, dict) else None)
    assert statuses[10:] == [402] * 3 and codes[10:] == ["card_velocity_exceeded"] * 3
    assert statuses[:10].count(201) >= 7  # the first ten go to the issuer (3 % declines)
    collector = CollectorClient(stack.urls["collector"])
    spans = eventually(
        lambda: collector.find_spans(
            SpanQuery(attributes={"customer.id": customer, "payment.status": "declined"})
        ),
        lambda found: len(found) >= 3,
    )
    assert all(s.name == "POST /api/checkout" for s in spans)
    logs = eventually(
        lambda: collector.find_logs(
            LogQuery(body_contains="payment declined", attributes={"customer_id": customer})
        ),
        lambda found: len(found) >= 3,
    )
    assert all(r.trace_id for r in logs)
    status, _, metrics = http("GET", stack.urls["api"] + "/metrics")
    assert status == 200 and customer not in str(metrics)  # never a metric label


def test_no_card_number_in_logs_or_spans(stack: EmbeddedStack) -> None:
    body = checkout_body("visa", card_token=f"tok_{PAN}")
    status, _, _ = _checkout(stack, body, new_key())
    assert status == 422  # refused at the edge, never stored or forwarded
    body = checkout_body("visa")
    body["customer"]["name"] = f"card {PAN}"  # a PAN hidden in a free-text field
    assert _checkout(stack, body, new_key())[0] == 201
    time.sleep(1.5)
    collector = CollectorClient(stack.urls["collector"])
    logs = collector.find_logs(LogQuery(since_unix_s=time.time() - 120))
    spans = collector.find_spans(SpanQuery(since_unix_s=time.time() - 120))
    blob = repr(logs) + repr(spans)
    for log_file in (stack.cfg.state_dir / "logs").glob("*.log"):
        blob += log_file.read_text(errors="replace")
    assert PAN not in blob


def test_seed_bottomk_names_the_least_used_method(stack: EmbeddedStack) -> None:
    mix = {"visa": 0.35, "paypal": 0.3, "crypto": 0.25, "amex": 0.10}
    prom = PrometheusClient(stack.urls["prometheus"])
    total_success = 'sum(shop_payments_total{status="success"})'
    before = eventually(lambda: prom.query(total_success), bool)
    result = asyncio.run(drive(stack.urls["api"], total=1600, concurrency=32, mix=mix, seed=5))
    assert result.transport_errors == 0
    sent_ok = {m: result.successes(m) for m in mix}
    assert min(sent_ok.values()) >= 100, sent_ok  # "a few hundred checkouts of each method"
    expected = before[0].value + sum(sent_ok.values())
    prom.wait_until(
        total_success,
        lambda s: bool(s) and s[0].value >= expected,
        timeout_s=30,
        poll_s=0.5,
    )
    answer = prom.query(
        'bottomk(1, sum by (method) (increase(shop_payments_total{status="success"}[24h])))'
    )
    assert len(answer) == 1
    assert answer[0].labels["method"] == min(sent_ok, key=lambda m: sent_ok[m]) == "amex"


def test_generated_prometheus_config_passes_promtool(stack: EmbeddedStack) -> None:
    output = check_config(stack.cfg.state_dir / "prometheus.yml")
    assert "SUCCESS" in output
    targets = PrometheusClient(stack.urls["prometheus"]).targets()
    jobs = {t.job for t in targets}
    assert {"payment-api", "gateway", "collector", "instance", "fault-proxy"} <= jobs


def test_checkouts_do_not_wait_for_a_stuck_collector(stack: EmbeddedStack) -> None:
    """Telemetry export never blocks a request: freeze the collector, checkouts still answer."""
    pid = stack.supervisor.pid_of("collector")
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        codes = [_checkout(stack, checkout_body("visa"), new_key())[0] for _ in range(20)]
        elapsed = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert set(codes) <= {201, 402}, codes  # charged or declined: answered, not stuck
    # 20 sequential checkouts with a 2 s export timeout would take 40 s or more if export blocked
    assert elapsed < 30, elapsed


def test_telemetry_off_is_all_off_and_the_api_still_charges(
    stack: EmbeddedStack, tmp_path: Path
) -> None:
    """``--no-telemetry`` (the benchmark's off): no spans and no log records reach the
    collector, ``/metrics`` is empty, no JSON log line is written; checkouts still answer."""
    import subprocess

    from paychaos.stack.service import free_port

    spec = stack.supervisor.components["api"].spec
    port = free_port()
    argv = list(spec.argv)
    argv[argv.index("--port") + 1] = str(port)
    stderr = tmp_path / "api-off.stderr"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [*argv, "--no-telemetry"], env={**os.environ, **spec.env}, cwd=spec.cwd,
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        assert eventually(lambda: _status(url + "/readyz"), lambda code: code == 200) == 200
        trace_id = f"{random.getrandbits(128):032x}"
        status, _, body = http("POST", url + "/api/checkout", checkout_body("visa"),
                               {"Idempotency-Key": new_key(),
                                "traceparent": f"00-{trace_id}-{random.getrandbits(64):016x}-01"})  # fmt: skip
        assert status in (201, 402), body
        metrics_status, _, metrics = http("GET", url + "/metrics")
        assert metrics_status == 200 and not str(metrics or "").strip()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    # The stack's own API is on: its spans for other traces arrive within a second; this
    # trace's server span would have been exported by now (500 ms batches) if it existed.
    time.sleep(2.0)
    collector = CollectorClient(stack.urls["collector"])
    # (the gateway is the stack's, telemetry on: its own span may carry the trace on)
    assert [s.name for s in collector.get_trace(trace_id) if s.service == "payment-api"] == []
    logs = collector.find_logs(LogQuery(trace_id=trace_id))
    assert [r.body for r in logs if r.service == "payment-api"] == []
    lines = [line for line in stderr.read_text().splitlines() if line.strip()]
    assert not any(line.lstrip().startswith("{") for line in lines), lines[:5]


def _status(url: str) -> int:
    try:
        return http("GET", url)[0]
    except OSError:
        return 0
