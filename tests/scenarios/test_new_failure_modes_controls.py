"""Negative controls of the failure modes added for issue #12 (amex outage, DB blackhole,
gateway crash, gateway network latency): each loads the real scenario file, builds its
key expectation's check, and shows it holds with the key signal and fails without it.

In memory (canned Prometheus answers, collector stores): no stack, no seconds spent.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
import yaml

from paychaos.checks import CheckContext, Window
from paychaos.checks.build import build_check
from paychaos.contracts.errors import StackError
from paychaos.contracts.expectations import Check
from paychaos.contracts.metrics import ActiveAlert, Sample
from paychaos.contracts.scenario import Expectation
from paychaos.contracts.signals import AlertNotification, Span
from paychaos.scenario import load_scenario
from paychaos.stack.collector.memory import InMemorySources
from paychaos.stack.monitoring.memory import InMemoryMetricsSource
from paychaos.stack.monitoring.processes import run_rule_tests

REPO = Path(__file__).resolve().parents[2]
NOW = time.time()
NS = 1_000_000_000
WINDOW = Window(since_unix_s=NOW - 60)


def _expectation(scenario: str, name_contains: str) -> Expectation:
    """The one expectation of ``scenarios/<scenario>.yaml`` whose name contains the text."""
    loaded = load_scenario(REPO / "scenarios" / f"{scenario}.yaml")
    found = [e for e in loaded.scenario.expectations if name_contains in e.name]
    assert len(found) == 1, f"{scenario}: {len(found)} expectations named *{name_contains}*"
    return found[0]


def _check(scenario: str, name_contains: str) -> Check:
    return build_check(_expectation(scenario, name_contains))


def _ctx(metrics: InMemoryMetricsSource, sources: InMemorySources | None = None) -> CheckContext:
    src = sources or InMemorySources()
    return CheckContext(
        metrics=metrics, traces=src, logs=src, rum=src, notifications=src, clock=lambda: NOW
    )


def _notified(name: str, **labels: str) -> AlertNotification:
    return AlertNotification(
        alertname=name,
        status="firing",
        labels={"alertname": name, **labels},
        annotations={},
        starts_at="",
        ends_at="",
        received_unix_ns=int(NOW * NS),
        receiver="paychaos-collector",
    )


# ---------------------------------------------------------------- amex-outage


def test_amex_outage_needs_the_per_method_alert_for_amex() -> None:
    check = _check("amex-outage", "PaymentErrorRatioHigh{method=amex}")
    metrics, sources = InMemoryMetricsSource(), InMemorySources()
    # key signal removed: only the other methods' alert (or none) fires -> the expectation fails
    metrics.add_alert(ActiveAlert("PaymentErrorRatioHigh", "firing", {"method": "visa"}))
    assert not check.observe(_ctx(metrics, sources), WINDOW).seen
    metrics.add_alert(ActiveAlert("PaymentErrorRatioHigh", "firing", {"method": "amex"}))
    sources.add_alerts([_notified("PaymentErrorRatioHigh", method="amex")])
    assert check.observe(_ctx(metrics, sources), WINDOW).seen


def _gateway_call(index: int, name: str, **attributes: str) -> Span:
    start = int((NOW - 10) * NS) + index * 1_000_000
    return Span(
        trace_id=f"{index + 1:032x}",
        span_id=f"{index + 1:016x}",
        parent_span_id="f" * 16,
        name=name,
        service="payment-api",
        kind="client",
        start_unix_ns=start,
        end_unix_ns=start + 20_000_000,
        status="error",
        attributes=attributes,
    )


def test_amex_outage_finds_the_amex_gateway_calls_on_either_stack() -> None:
    check = _check("amex-outage", "error spans on the amex gateway calls")
    url = "http://127.0.0.1:8081/v1/charges"
    python, node = InMemorySources(), InMemorySources()
    python.add_spans(
        _gateway_call(i, "POST /v1/charges", **{"url.full": url, "payment.method": "amex"})
        for i in range(3)
    )
    node.add_spans(
        _gateway_call(i, "POST", **{"http.url": url, "payment.method": "amex"}) for i in range(3)
    )
    assert check.observe(_ctx(InMemoryMetricsSource(), python), WINDOW).seen
    assert check.observe(_ctx(InMemoryMetricsSource(), node), WINDOW).seen
    # key signal removed: the calls failing for visa, or amex spans that are no gateway call
    other = InMemorySources()
    other.add_spans(
        _gateway_call(i, "POST", **{"http.url": url, "payment.method": "visa"}) for i in range(3)
    )
    other.add_spans(
        _gateway_call(
            i, "POST /api/checkout", **{"http.route": "/api/checkout", "payment.method": "amex"}
        )
        for i in range(3, 6)
    )
    assert not check.observe(_ctx(InMemoryMetricsSource(), other), WINDOW).seen


def test_amex_outage_fails_if_the_all_methods_ratio_would_have_caught_it() -> None:
    """The must-not: an aggregate error ratio over 5 % for 15 s (what an all-methods
    PaymentErrorRatioHigh would need to fire) means amex was not a low-traffic outage."""
    exp = _expectation("amex-outage", "all-methods error ratio")
    check = build_check(exp)
    assert check.mode == "never"
    query = getattr(exp, "query", "")
    metrics, clock = InMemoryMetricsSource(), [NOW]
    ctx = _ctx(metrics)
    ctx.clock = lambda: clock[0]
    metrics.set_query(query, [Sample({}, 0.029)])  # amex's 1 % (with retries): quiet
    assert not check.observe(ctx, WINDOW).seen
    metrics.set_query(query, [Sample({}, 0.08)])  # amex at its default 10 %: over 5 %
    assert not check.observe(ctx, WINDOW).seen  # not for 15 s yet
    clock[0] += 15
    assert check.observe(ctx, WINDOW).seen  # seen = the must-not happened: fails


def test_amex_outage_bottomk_must_name_amex_with_no_success() -> None:
    exp = _expectation("amex-outage", "bottomk")
    check = build_check(exp)
    query = getattr(exp, "query", "")
    assert "bottomk(1, sum by (method)" in query and 'status="error"' in query
    metrics = InMemoryMetricsSource()
    # amex still succeeding (the outage not there): bottomk names it, with successes
    metrics.set_query(query, [Sample({"method": "amex"}, 4.0)])
    assert not check.observe(_ctx(metrics), WINDOW).seen
    # bottomk names another method, or amex is not failing: `and on (method)` drops it
    metrics.set_query(query, [])
    assert not check.observe(_ctx(metrics), WINDOW).seen
    metrics.set_query(query, [Sample({"method": "amex"}, 0.0)])
    assert check.observe(_ctx(metrics), WINDOW).seen


def _promtool_eval(tmp_path: Path, series: dict[str, str], tests: list[dict[str, object]]) -> str:
    """Evaluate PromQL on synthetic series with ``promtool test rules`` (no rules)."""
    (tmp_path / "empty_rules.yml").write_text("groups: []\n")
    doc = {
        "rule_files": ["empty_rules.yml"],
        "evaluation_interval": "5s",
        "tests": [
            {
                "interval": "5s",
                "input_series": [{"series": k, "values": v} for k, v in series.items()],
                "promql_expr_test": tests,
            }
        ],
    }
    path = tmp_path / "scenario_queries_test.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return run_rule_tests([path])


def _amex_series(amex_fails: bool) -> dict[str, str]:
    """20 checkouts/s, amex 1 %: healthy for 100 s, then (if failing) every attempt x3 fails."""
    ok = "0+1x20 20x20" if amex_fails else "0+1x40"
    errors = "0x20 3+3x19" if amex_fails else "0x40"
    return {
        'shop_payments_total{method="visa",status="success"}': "0+50x40",
        'shop_payments_total{method="paypal",status="success"}': "0+30x40",
        'shop_payments_total{method="crypto",status="success"}': "0+19x40",
        'shop_payments_total{method="amex",status="success"}': ok,
        'shop_payments_total{method="amex",status="error"}': errors,
        'shop_payments_total{method="visa",status="error"}': "0x40",
    }


def test_amex_outage_queries_on_real_promql(tmp_path: Path) -> None:
    """The scenario's own bottomk and aggregate queries, evaluated by Prometheus's engine."""
    bottomk = getattr(_expectation("amex-outage", "bottomk"), "query", "")
    aggregate = getattr(_expectation("amex-outage", "all-methods error ratio"), "query", "")
    failing: list[dict[str, object]] = [
        {
            "expr": bottomk,
            "eval_time": "3m",
            "exp_samples": [{"labels": '{method="amex"}', "value": 0}],
        },
        # 0.6 failed attempts/s of 20.4: the must-not (> 5 %) does not happen
        {
            "expr": f"({aggregate}) < bool 0.05",
            "eval_time": "3m",
            "exp_samples": [{"labels": "{}", "value": 1}],
        },
    ]
    _promtool_eval(tmp_path, _amex_series(amex_fails=True), failing)
    # key signal removed (amex healthy): bottomk still names amex, but not with 0 successes
    healthy: list[dict[str, object]] = [{"expr": bottomk, "eval_time": "3m", "exp_samples": []}]
    _promtool_eval(tmp_path, _amex_series(amex_fails=False), healthy)
    with pytest.raises(StackError):  # and the failing expectation does not hold for it
        _promtool_eval(tmp_path, _amex_series(amex_fails=False), failing[:1])


# --------------------------------------------------------------- db-blackhole


def _db_call(trace: str, index: int, error_type: str, duration_ms: float) -> Span:
    start = int((NOW - 10) * NS) + index * 1_000_000
    return Span(
        trace_id=trace,
        span_id=f"{index + 1:016x}",
        parent_span_id="f" * 16,
        name="INSERT payments",
        service="payment-api",
        kind="client",
        start_unix_ns=start,
        end_unix_ns=start + int(duration_ms * 1e6),
        status="error",
        attributes={"error.type": error_type},
    )


def test_db_blackhole_needs_timeouts_that_hung_not_resets() -> None:
    """The same outage by reset (fast ConnectionResetError spans) does not pass as a hang."""
    check = _check("db-blackhole", "timeouts that hung")
    sources = InMemorySources()
    # db-outage's signature: every call refused at once
    sources.add_spans(_db_call(f"{i:032x}", i, "ConnectionResetError", 2) for i in range(5))
    assert not check.observe(_ctx(InMemoryMetricsSource(), sources), WINDOW).seen
    # a timeout that did not hang (a fast statement timeout) is not a blackhole either
    sources.add_spans(_db_call(f"{i:032x}", i, "TimeoutError", 40) for i in range(5, 10))
    assert not check.observe(_ctx(InMemoryMetricsSource(), sources), WINDOW).seen
    sources.add_spans(_db_call(f"{i:032x}", i, "TimeoutError", 1500) for i in range(10, 13))
    assert check.observe(_ctx(InMemoryMetricsSource(), sources), WINDOW).seen


def _node_db_call(trace: str, index: int, message: str, duration_ms: float) -> Span:
    """Node's pg instrumentation: no ``error.type`` on a connect, the error's message only."""
    span = _db_call(trace, index, "", duration_ms)
    return dataclasses.replace(
        span,
        name="pg.connect",
        status_message=message,
        attributes={"db.system.name": "postgresql", "db.namespace": "postgres"},
    )


def test_db_blackhole_reads_nodes_timeouts_and_refuses_its_resets() -> None:
    check = _check("db-blackhole", "timeouts that hung")
    sources = InMemorySources()
    # resets that took long (the pool waited) are still resets, not a hang
    sources.add_spans(
        _node_db_call(f"{i:032x}", i, "Connection terminated unexpectedly", 1500) for i in range(5)
    )
    sources.add_spans(_node_db_call(f"{i:032x}", i, "timeout expired", 40) for i in range(5, 10))
    assert not check.observe(_ctx(InMemoryMetricsSource(), sources), WINDOW).seen
    sources.add_spans(_node_db_call(f"{i:032x}", i, "timeout expired", 1001) for i in range(10, 13))
    assert check.observe(_ctx(InMemoryMetricsSource(), sources), WINDOW).seen


def test_db_blackhole_blames_postgresql_for_a_connect_but_not_the_gateway() -> None:
    check = _check("db-blackhole", "spend their time in the database")
    root = "f" * 16

    def checkout(trace: str, slow: Span) -> list[Span]:
        start = int((NOW - 10) * NS)
        server = Span(
            trace_id=trace,
            span_id=root,
            parent_span_id=None,
            name="POST /api/checkout",
            service="payment-api",
            kind="server",
            start_unix_ns=start,
            end_unix_ns=start + 1_100_000_000,
        )
        return [server, dataclasses.replace(slow, trace_id=trace)]

    node, gateway = InMemorySources(), InMemorySources()
    for i in range(3):
        trace = f"{i + 1:032x}"
        connect = _node_db_call(trace, 0, "timeout expired", 1050)
        node.add_spans(checkout(trace, connect))
        call = dataclasses.replace(
            connect, name="POST", attributes={"http.url": "http://gw/v1/charges"}
        )
        gateway.add_spans(checkout(trace, call))
    assert check.observe(_ctx(InMemoryMetricsSource(), node), WINDOW).seen
    assert not check.observe(_ctx(InMemoryMetricsSource(), gateway), WINDOW).seen


def test_db_blackhole_needs_the_database_to_look_slow() -> None:
    exp = _expectation("db-blackhole", "operations take seconds")
    check = build_check(exp)
    query = getattr(exp, "query", "")
    metrics = InMemoryMetricsSource()
    metrics.set_query(query, [Sample({}, 0.004)])  # failing fast, as by reset
    assert not check.observe(_ctx(metrics), WINDOW).seen
    metrics.set_query(query, [Sample({}, 2.9)])
    assert check.observe(_ctx(metrics), WINDOW).seen


# -------------------------------------------------------------- gateway-crash


def test_gateway_crash_needs_the_gateway_restarted() -> None:
    exp = _expectation("gateway-crash", "restart counter")
    check = build_check(exp)
    query = getattr(exp, "query", "")
    metrics = InMemoryMetricsSource()
    metrics.set_query(query, [Sample({"component": "gateway"}, 0.0)])  # never crashed
    assert not check.observe(_ctx(metrics), WINDOW).seen
    metrics.set_query(query, [Sample({"component": "gateway"}, 1.0)])
    assert check.observe(_ctx(metrics), WINDOW).seen


def test_gateway_crash_needs_a_new_gateway_process() -> None:
    exp = _expectation("gateway-crash", "new process")
    check = build_check(exp)
    query = getattr(exp, "query", "")
    metrics = InMemoryMetricsSource()
    metrics.set_query(query, [Sample({"job": "gateway"}, 0.0)])  # the same process
    assert not check.observe(_ctx(metrics), WINDOW).seen
    metrics.set_query(query, [Sample({"job": "gateway"}, 1.0)])
    assert check.observe(_ctx(metrics), WINDOW).seen


def test_gateway_crash_fails_when_the_database_is_blamed() -> None:
    check = _check("gateway-crash", "database is not blamed")
    metrics = InMemoryMetricsSource()
    assert not check.observe(_ctx(metrics), WINDOW).seen
    metrics.add_alert(ActiveAlert("DatabaseErrors", "firing", {"component": "database"}))
    assert check.observe(_ctx(metrics), WINDOW).seen  # seen = the false alert: fails


# ---------------------------------------------------- gateway-network-latency


def _charge_trace(trace: str, *, network_ms: float, processing_ms: float) -> list[Span]:
    """checkout → API's gateway client span → gateway's server span, times in ms."""
    base = int((NOW - 10) * NS)

    def span(span_id: str, parent: str | None, name: str, service: str, a: float, b: float):
        kind = "server" if service == "payment-gateway" or parent is None else "client"
        return Span(
            trace_id=trace,
            span_id=span_id,
            parent_span_id=parent,
            name=name,
            service=service,
            kind=kind,  # type: ignore[arg-type]
            start_unix_ns=base + int(a * 1e6),
            end_unix_ns=base + int(b * 1e6),
        )

    root, client, server = trace[:16], "c" * 16, "d" * 16
    gateway_ms = 5 + processing_ms
    return [
        span(root, None, "POST /api/checkout", "payment-api", 0, 20 + gateway_ms + network_ms),
        span("a" * 16, root, "INSERT payments", "payment-api", 1, 5),
        span(client, root, "POST /v1/charges", "payment-api", 10, 10 + gateway_ms + network_ms),
        span(server, client, "POST /v1/charges", "payment-gateway", 11, 11 + gateway_ms),
    ]


def _sources(**shape: float) -> InMemorySources:
    sources = InMemorySources()
    for i in range(3):
        sources.add_spans(_charge_trace(f"{i + 1:032x}", **shape))
    return sources


def test_gateway_network_latency_traces_tell_network_from_processing() -> None:
    network = _check("gateway-network-latency", "network: slow checkouts")
    processing = _check("gateway-network-latency", "processing: slow checkouts")
    metrics = InMemoryMetricsSource()
    slow_network = _sources(network_ms=400, processing_ms=0)
    slow_gateway = _sources(network_ms=0, processing_ms=400)
    assert network.observe(_ctx(metrics, slow_network), WINDOW).seen
    # key signal removed: the same slow checkouts, but the time is in the gateway's span
    assert not network.observe(_ctx(metrics, slow_gateway), WINDOW).seen
    assert processing.observe(_ctx(metrics, slow_gateway), WINDOW).seen
    assert not processing.observe(_ctx(metrics, slow_network), WINDOW).seen


def test_gateway_network_latency_needs_the_client_side_excess() -> None:
    exp = _expectation("gateway-network-latency", "network: the API's gateway-call p95")
    check = build_check(exp)
    query = getattr(exp, "query", "")
    metrics = InMemoryMetricsSource()
    metrics.set_query(query, [Sample({}, 0.01)])  # slow gateway: both sides equally slow
    assert not check.observe(_ctx(metrics), WINDOW).seen
    metrics.set_query(query, [Sample({}, 0.4)])
    assert check.observe(_ctx(metrics), WINDOW).seen
