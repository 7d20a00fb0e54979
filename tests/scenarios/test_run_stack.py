"""The runner end to end on a real embedded stack, and each signal's negative control there."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from scenario_stack_helpers import (
    charge,
    charge_until_succeeded,
    gateway_admin,
    post_status,
    toxics,
)

from paychaos.checks import CheckContext, HygieneCheck, LedgerCheck, Window
from paychaos.checks.ledger import gateway_duplicates
from paychaos.contracts.signals import SpanQuery
from paychaos.report.history import append_history, read_history
from paychaos.report.html import write_html
from paychaos.report.json_report import write_json
from paychaos.report.junit import write_junit
from paychaos.runner.runner import RunOptions, run_scenario
from paychaos.runner.traffic import LedgerFile
from paychaos.scenario import parse_scenario
from paychaos.stack.collector.client import CollectorClient
from paychaos.stack.monitoring.promapi import PrometheusClient
from paychaos.traffic.ledger import LedgerEntry
from tests.live_stack import LiveStack as StackHandle

pytestmark = pytest.mark.integration

GATEWAY_ERRORS = """\
name: visa-gateway-errors
traffic: {rate_per_s: 8, duration_s: 30}
steady_state:
  probes:
    - type: metric
      query: sum(rate(shop_payments_total{status="error"}[10s])) / sum(rate(shop_payments_total[10s]))
      op: "<"
      value: 0.01
faults:
  - {id: visa-fails, fault: gateway-errors, at_s: 5, duration_s: 12,
     params: {method: visa, error_rate: 1.0, status: 503}}
expectations:
  - {name: visa errors counted, type: metric, within_s: 10,
     query: 'sum(rate(shop_payments_total{method="visa",status="error"}[10s]))', op: ">", value: 0}
  - {name: error logs with traces, type: log, level: error, body_contains: gateway error,
     attributes: {method: visa}, within_s: 10}
  - {name: error spans, type: trace, service: payment-api, span: POST /v1/charges,
     status: error, min_spans: 2, within_s: 10}
  - {name: browser exceptions, type: rum, kind: exception, rum_name: PaymentError,
     attributes: {method: visa}, within_s: 10}
  - {name: no ServiceDown, type: alert, alert: ServiceDown, absent: true}
  - {name: ledgers reconcile, type: ledger, settle_s: 45}
  - {name: no card numbers, type: hygiene}
recovery: {within_s: 25}
"""


class _Ledger:
    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def ledger_paths(self) -> list[Path]:
        return self.paths


def _ctx(handle: StackHandle, ledger: list[Path] | None = None) -> CheckContext:
    collector = CollectorClient(handle.urls["collector"])
    ctx = CheckContext(
        metrics=PrometheusClient(handle.urls["prometheus"]),
        traces=collector,
        logs=collector,
        rum=collector,
        notifications=collector,
        api_url=handle.urls["api"],
        gateway_url=handle.urls["gateway"],
    )
    if ledger is not None:
        ctx.client_ledger = _Ledger(ledger)
    ctx.baseline["gateway_duplicate_charges"] = float(gateway_duplicates(handle.urls["gateway"]))
    return ctx


def test_a_scenario_runs_passes_reverts_and_reports(run_stack: StackHandle, tmp_path: Path) -> None:
    loaded = parse_scenario(GATEWAY_ERRORS, "inline.yaml")
    record = run_scenario(loaded, run_stack.session)
    failed = [(e.name, e.detail) for e in record.expectations if e.status != "passed"]
    assert record.status == "passed", (record.reason, failed)
    assert record.faults[0].injected_unix_s and record.faults[0].reverted_unix_s
    assert gateway_admin(run_stack, "GET", "/admin/behaviours")["data"] == []
    detected = {e.name: e.detected_s for e in record.expectations}
    assert detected["visa errors counted"] is not None
    assert record.recovered_s is not None and record.traffic["sent"] > 0
    assert record.times_below_floor() == []  # visa errors: 10.1 s < its 11 s window floor
    assert record.series and record.client_timeline

    report = json.loads(write_json([record], tmp_path / "report.json").read_text())
    assert report["status"] == "passed" and report["runs"][0]["scenario"] == "visa-gateway-errors"
    suite = ET.parse(write_junit([record], tmp_path / "junit.xml")).getroot()
    assert suite.get("failures") == "0" and int(suite.get("tests", "0")) == 8
    html = write_html([record], tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in html and "visa errors counted" in html
    append_history(tmp_path, record)
    assert read_history(tmp_path)[0].scenario == "visa-gateway-errors"


@contextlib.contextmanager
def _without_rule(stack: StackHandle, rule: str) -> Iterator[PrometheusClient]:
    """The stack's Prometheus reloaded with its rules minus ``rule`` (a copy of the rule
    files in the state directory; the repository's files are untouched), then restored."""
    state = stack.stack.cfg.state_dir
    config_path = state / "prometheus.yml"
    original = config_path.read_text()
    config = yaml.safe_load(original)
    (pattern,) = config["rule_files"]
    copy = state / "rules-control"
    copy.mkdir(exist_ok=True)
    removed = 0
    for path in sorted(Path(pattern).parent.glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for group in doc.get("groups", []):
            kept = [r for r in group["rules"] if r.get("alert") != rule]
            removed += len(group["rules"]) - len(kept)
            group["rules"] = kept
        (copy / path.name).write_text(yaml.safe_dump(doc, sort_keys=False))
    assert removed >= 1, f"{rule} is not a rule of the stack"
    config["rule_files"] = [str(copy / "*.yml")]
    prometheus = PrometheusClient(stack.urls["prometheus"])
    try:
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        prometheus.reload()
        assert rule not in {r.name for r in prometheus.rules()}
        yield prometheus
    finally:
        config_path.write_text(original)
        prometheus.reload()
        shutil.rmtree(copy, ignore_errors=True)
        assert rule in {r.name for r in prometheus.rules()}, "the rule was not restored"


def test_a_real_rule_removed_from_prometheus_fails_the_scenario_that_needs_it(
    run_stack: StackHandle,
) -> None:
    """Negative control for alert expectations: ``DatabaseLatencyHigh``, a real rule, is
    removed from the rules Prometheus loads, and a slow-database scenario that expects it
    fails on that expectation alone (the latency is still seen as a metric)."""
    text = """\
name: rule-removed
traffic: {rate_per_s: 6, duration_s: 30}
faults:
  - {id: slow-db, fault: db-latency, at_s: 3, duration_s: 22, params: {latency_ms: 300}}
expectations:
  - {name: DatabaseLatencyHigh fires, type: alert, alert: DatabaseLatencyHigh,
     labels: {component: database}, within_s: 26}
  - {name: p95 still seen, type: metric, within_s: 12,
     query: 'histogram_quantile(0.95, sum by (le) (rate(shop_db_operation_duration_seconds_bucket[10s])))',
     op: ">", value: 0.2}
"""
    with _without_rule(run_stack, "DatabaseLatencyHigh"):
        record = run_scenario(parse_scenario(text, "inline.yaml"), run_stack.session)
    status = {e.name: e.status for e in record.expectations}
    assert status == {"DatabaseLatencyHigh fires": "failed", "p95 still seen": "passed"}
    assert record.status == "failed"
    assert toxics(run_stack) == []


def test_an_interrupted_run_reverts_and_is_recorded(run_stack: StackHandle) -> None:
    text = """\
name: interrupted
traffic: {rate_per_s: 4, duration_s: 60}
faults:
  - {id: slow-db, fault: db-latency, at_s: 1, duration_s: 50, params: {latency_ms: 100}}
expectations:
  - {type: alert, alert: DatabaseErrors, within_s: 50}
"""
    stop = threading.Event()
    seen_toxics: list[int] = []

    def interrupt() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not toxics(run_stack):
            time.sleep(0.2)
        seen_toxics.append(len(toxics(run_stack)))
        stop.set()

    thread = threading.Thread(target=interrupt)
    thread.start()
    try:
        record = run_scenario(
            parse_scenario(text, "inline.yaml"), run_stack.session, RunOptions(stop=stop)
        )
    finally:
        stop.set()
        thread.join()
    assert seen_toxics and seen_toxics[0] > 0
    assert record.status == "interrupted"
    assert [e.status for e in record.expectations] == ["not_run"]
    assert toxics(run_stack) == []


def test_ledger_check_catches_a_gateway_that_double_charges(
    run_stack: StackHandle, tmp_path: Path
) -> None:
    for _ in range(30):  # a key whose first charge succeeds (the gateway declines some)
        key = f"test-double-{uuid.uuid4().hex[:8]}"
        if charge(run_stack, key, f"pay_{key}") == 201:
            break
    else:
        pytest.fail("the gateway declined 30 charges in a row")
    ledger = LedgerFile(tmp_path / "ledger-test-1.jsonl")
    ledger.write(LedgerEntry(time.time(), key, "visa", 1999, "USD", 1, "succeeded", 201))
    ledger.close()
    ctx = _ctx(run_stack, [ledger.path])
    assert charge(run_stack, key, f"pay_{key}") in (200, 201)  # an idempotent replay
    check = LedgerCheck(settle_s=0)
    assert not check.observe(ctx, Window(time.time() - 60)).seen  # API never saw the payment
    clean = LedgerCheck(settle_s=0, max_lost=1)
    assert clean.observe(ctx, Window(time.time() - 60)).seen  # no double charge (yet)
    behaviour = gateway_admin(
        run_stack,
        "POST",
        "/admin/behaviours",
        {"method": "visa", "ignore_idempotency": True, "ttl_s": 30},
    )
    try:  # the retry charges again
        assert charge_until_succeeded(run_stack, key, f"pay_{key}")
    finally:
        gateway_admin(run_stack, "DELETE", f"/admin/behaviours/{behaviour['id']}")
    obs = clean.observe(ctx, Window(time.time() - 60))
    assert not obs.seen and "1 double charges" in obs.detail


def test_hygiene_check_catches_a_card_number_pushed_by_the_browser(run_stack: StackHandle) -> None:

    since = time.time() - 1
    ctx = _ctx(run_stack)
    assert HygieneCheck(("rum",)).observe(ctx, Window(since)).seen
    payload = {
        "meta": {"app": {"name": "shop"}, "page": {"url": "http://127.0.0.1/checkout"}},
        "logs": [{"message": "card 4111 1111 1111 1111 rejected", "level": "error"}],
    }
    req = urllib.request.Request(
        run_stack.urls["collector"] + "/collect",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 202
    obs = HygieneCheck(("rum",)).observe(ctx, Window(since))
    assert not obs.seen and "card number" in obs.detail


PAN = "4111111111111111"  # a Luhn-valid test card number, 16 digits: a valid Idempotency-Key


def test_hygiene_check_catches_a_card_number_on_the_api_s_own_span_attributes(
    run_stack: StackHandle,
) -> None:
    """Where the API really traces client-chosen strings (``payment.idempotency_key``,
    ``customer.id`` on its ``POST /api/checkout`` span): a span exported with a PAN
    there, through the API's own telemetry set-up to the same collector, is caught by
    the card-number check; and the API itself, sent that PAN as key and customer id,
    masks both, and so does the gateway it forwards the key to (the check holds on what
    they exported; before, both services put the key on their spans as sent)."""
    from paychaos.stack.telemetry import TelemetrySettings, setup_telemetry

    ctx = _ctx(run_stack)
    since = time.time() - 1
    telemetry = setup_telemetry(
        TelemetrySettings("payment-api", otlp_endpoint=run_stack.urls["collector"]),
        install_global=False,
    )
    try:
        with telemetry.tracer.start_as_current_span("POST /api/checkout") as span:
            span.set_attribute("payment.idempotency_key", PAN)
    finally:
        telemetry.tracer_provider.shutdown()  # type: ignore[union-attr]
    obs = HygieneCheck(("spans",)).observe(ctx, Window(since))
    assert not obs.seen and "span payment-api/POST /api/checkout" in obs.detail, obs.detail

    time.sleep(1.1)
    since = time.time()  # after the span exported above
    body = {
        "customer": {"id": PAN, "email": "ana@example.com"},
        "items": [{"sku": "MUG", "quantity": 2, "unit_price": "9.50"}],
        "amount": "19.00",
        "currency": "USD",
        "method": "visa",
        "payment": {"card_token": "tok_visa_1", "last4": "4242"},
    }
    status = post_status(run_stack.urls["api"] + "/api/checkout", body, PAN)
    assert status in (201, 402), status
    time.sleep(1.5)  # more than the API's export delay
    spans = CollectorClient(run_stack.urls["collector"]).find_spans(
        SpanQuery(since_unix_s=since, service="payment-api", name="POST /api/checkout")
    )
    served = [s for s in spans if "customer.id" in s.attributes]  # not the one exported above
    assert served, "the API's checkout span did not arrive"
    attrs = served[-1].attributes
    assert attrs["payment.idempotency_key"] == attrs["customer.id"] == "[PAN REDACTED ...1111]"
    assert HygieneCheck(("spans", "logs")).observe(ctx, Window(since)).seen
