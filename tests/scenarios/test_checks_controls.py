"""Every expectation type against in-memory sources: the signal present (holds), absent (fails)."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime

import pytest

from paychaos.checks import (
    AlertCheck,
    CheckContext,
    HygieneCheck,
    LogCheck,
    MetricCheck,
    RumCheck,
    TraceCheck,
    Window,
    probe_metric,
    probe_no_alerts,
)
from paychaos.checks.trace import error_category
from paychaos.contracts.metrics import ActiveAlert, Sample
from paychaos.contracts.scenario import Dominant, MetricProbe, NoAlertsProbe
from paychaos.contracts.signals import (
    AlertNotification,
    LogQuery,
    LogRecord,
    RumItem,
    RumKind,
    RumQuery,
    Span,
    SpanEvent,
    SpanQuery,
)
from paychaos.stack.collector.memory import InMemorySources
from paychaos.stack.monitoring.memory import InMemoryMetricsSource

NOW = time.time()
NS = 1_000_000_000


def _ctx(
    metrics: InMemoryMetricsSource | None = None, sources: InMemorySources | None = None
) -> CheckContext:
    src = sources or InMemorySources()
    return CheckContext(
        metrics=metrics or InMemoryMetricsSource(),
        traces=src,
        logs=src,
        rum=src,
        notifications=src,
        clock=lambda: NOW,
    )


WINDOW = Window(since_unix_s=NOW - 60)


def _span(
    trace: str,
    span_id: str,
    parent: str | None,
    name: str,
    start_ms: float,
    end_ms: float,
    service: str = "payment-api",
    **attrs: object,
) -> Span:
    base = int((NOW - 10) * NS)
    return Span(
        trace_id=trace,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        service=service,
        kind="server" if parent is None else "client",
        start_unix_ns=base + int(start_ms * 1e6),
        end_unix_ns=base + int(end_ms * 1e6),
        attributes=dict(attrs),  # type: ignore[arg-type]
    )


def _slow_db_trace(trace: str) -> list[Span]:
    return [
        _span(trace, trace[:16], None, "POST /api/checkout", 0, 500),
        _span(trace, "a" * 16, trace[:16], "INSERT payments", 5, 420),
        _span(trace, "b" * 16, trace[:16], "POST /v1/charges", 425, 490),
    ]


# ------------------------------------------------------------------ metric


def test_metric_check_holds_when_the_condition_does_and_fails_without_series() -> None:
    metrics = InMemoryMetricsSource()
    check = MetricCheck("db_p95", ">", 0.2)
    assert not check.observe(_ctx(metrics), WINDOW).seen  # negative control: no series
    metrics.set_query("db_p95", [Sample({}, 0.1)])
    assert not check.observe(_ctx(metrics), WINDOW).seen  # below the threshold
    metrics.set_query("db_p95", [Sample({}, 0.4)])
    obs = check.observe(_ctx(metrics), WINDOW)
    assert obs.seen and obs.at_unix_s == NOW


def test_metric_check_with_for_needs_the_condition_to_last() -> None:
    metrics = InMemoryMetricsSource()
    metrics.set_query("x", [Sample({}, 1.0)])
    clock = [NOW]
    ctx = _ctx(metrics)
    ctx.clock = lambda: clock[0]
    check = MetricCheck("x", "==", 1, for_s=5)
    assert not check.observe(ctx, WINDOW).seen
    clock[0] += 5
    obs = check.observe(ctx, WINDOW)
    assert obs.seen and obs.at_unix_s == NOW + 5  # detected once it has lasted for_s


def test_absent_metric_is_a_never_check() -> None:
    """``absent: true``: the condition holding is what fails it (mode ``never``)."""
    from paychaos.checks.build import build_check
    from paychaos.contracts.scenario import MetricExpectation

    exp = MetricExpectation(type="metric", query="agg", op=">", value=0.05, absent=True)
    check = build_check(exp)
    assert check.mode == "never" and check.description.startswith("never: ")
    metrics = InMemoryMetricsSource()
    assert not check.observe(_ctx(metrics), WINDOW).seen  # no series: nothing happened
    metrics.set_query("agg", [Sample({}, 0.03)])
    assert not check.observe(_ctx(metrics), WINDOW).seen
    metrics.set_query("agg", [Sample({}, 0.07)])
    assert check.observe(_ctx(metrics), WINDOW).seen  # seen = the must-not happened
    assert build_check(exp.model_copy(update={"absent": False})).mode == "eventually"


def test_steady_state_probes() -> None:
    metrics = InMemoryMetricsSource()
    metrics.set_query("err", [Sample({"method": "visa"}, 0.0), Sample({"method": "amex"}, 0.2)])
    ok, detail = probe_metric(metrics, MetricProbe(type="metric", query="err", op="<", value=0.01))
    assert not ok and "amex" in detail
    metrics.add_alert(ActiveAlert("InstanceOOMKill", "firing", {"severity": "critical"}))
    assert probe_no_alerts(metrics, NoAlertsProbe(type="no_alerts", ignore=("InstanceOOMKill",)))[0]
    metrics.add_alert(ActiveAlert("DatabaseErrors", "firing", {"severity": "critical"}))
    ok, detail = probe_no_alerts(metrics, NoAlertsProbe(type="no_alerts"))
    assert not ok and "DatabaseErrors" in detail


# ------------------------------------------------------------------- alert


def _notification(name: str, **labels: str) -> AlertNotification:
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


def test_alert_check_needs_firing_and_the_notification() -> None:
    metrics, sources = InMemoryMetricsSource(), InMemorySources()
    check = AlertCheck("DatabaseLatencyHigh", {"component": "database"})
    assert not check.observe(_ctx(metrics, sources), WINDOW).seen  # negative control: no rule
    metrics.add_alert(ActiveAlert("DatabaseLatencyHigh", "pending", {"component": "database"}))
    assert not check.observe(_ctx(metrics, sources), WINDOW).seen  # pending is not firing
    metrics.clear_alerts()
    metrics.add_alert(ActiveAlert("DatabaseLatencyHigh", "firing", {"component": "database"}))
    obs = check.observe(_ctx(metrics, sources), WINDOW)
    assert not obs.seen and "no notification" in obs.detail  # Alertmanager did not deliver
    sources.add_alerts([_notification("DatabaseLatencyHigh", component="database")])
    assert check.observe(_ctx(metrics, sources), WINDOW).seen


def test_alert_check_reports_when_it_fired_and_since_when_it_was_active() -> None:
    """The matrix's "alert fired" and "notified" cells, and its "firing before the fault"."""
    metrics, sources = InMemoryMetricsSource(), InMemorySources()
    check = AlertCheck("DatabaseErrors")
    assert check.observe(_ctx(metrics, sources), WINDOW).stages == {}  # not firing
    active = datetime.fromtimestamp(NOW - 90, UTC)
    metrics.add_alert(ActiveAlert("DatabaseErrors", "firing", {}, active_at=active))
    obs = check.observe(_ctx(metrics, sources), WINDOW)
    assert not obs.seen and obs.stages == {"fired": NOW, "active": pytest.approx(NOW - 90)}
    sources.add_alerts([_notification("DatabaseErrors")])
    obs = check.observe(_ctx(metrics, sources), WINDOW)
    assert obs.seen and obs.stages["fired"] == NOW and obs.stages["notified"] >= NOW


def test_alert_labels_must_match() -> None:
    metrics = InMemoryMetricsSource()
    metrics.add_alert(ActiveAlert("PaymentErrorRatioHigh", "firing", {"method": "paypal"}))
    check = AlertCheck("PaymentErrorRatioHigh", {"method": "visa"}, notification=False)
    assert not check.observe(_ctx(metrics), WINDOW).seen


def test_absent_alert_is_a_never_check() -> None:
    metrics = InMemoryMetricsSource()
    check = AlertCheck("PaymentErrorRatioHigh", absent=True)
    assert check.mode == "never"
    assert not check.observe(_ctx(metrics), WINDOW).seen
    metrics.add_alert(ActiveAlert("PaymentErrorRatioHigh", "firing", {"method": "visa"}))
    assert check.observe(_ctx(metrics), WINDOW).seen  # seen = the false positive happened


# ------------------------------------------------------------------- trace


def test_trace_check_blames_the_dominant_contributor() -> None:
    sources = InMemorySources()
    query = SpanQuery(service="payment-api", name="POST /api/checkout", min_duration_ms=300)
    db = Dominant(service="payment-api", name_contains="payments")
    check = TraceCheck(query, min_spans=2, dominant=db)
    assert not check.observe(_ctx(sources=sources), WINDOW).seen  # negative control: no traces
    for trace in ("1" * 32, "2" * 32):
        sources.add_spans(_slow_db_trace(trace))
    obs = check.observe(_ctx(sources=sources), WINDOW)
    assert obs.seen and "INSERT payments" in obs.detail
    wrong = TraceCheck(query, min_spans=2, dominant=Dominant(name_contains="/v1/charges"))
    assert not wrong.observe(_ctx(sources=sources), WINDOW).seen


def _node_slow_db_trace(trace: str) -> list[Span]:
    """The same slow checkout as Node's instrumentations name it (the NestJS service)."""
    insert = "INSERT INTO payments (id, idempotency_key) VALUES ($1, $2)"
    return [
        _span(
            trace, trace[:16], None, "POST /api/checkout", 0, 500, **{"http.route": "/api/checkout"}
        ),
        _span(
            trace,
            "c" * 16,
            trace[:16],
            "pg.query:INSERT postgres",
            5,
            420,
            **{"db.system.name": "postgresql", "db.query.text": insert},
        ),
        _span(
            trace, "d" * 16, trace[:16], "POST", 425, 490, **{"url.full": "http://gw/v1/charges"}
        ),
    ]


def test_trace_check_calls_blames_what_the_span_calls_on_either_stack() -> None:
    query = SpanQuery(service="payment-api", name="POST /api/checkout", min_duration_ms=300)
    db = TraceCheck(query, min_spans=2, dominant=Dominant(service="payment-api", calls="payments"))
    gateway = TraceCheck(query, min_spans=2, dominant=Dominant(calls="/v1/charges"))
    by_name = TraceCheck(query, min_spans=2, dominant=Dominant(name_contains="payments"))
    assert "calling 'payments'" in db.description
    for make in (_slow_db_trace, _node_slow_db_trace):
        sources = InMemorySources()
        assert not db.observe(_ctx(sources=sources), WINDOW).seen  # negative control: no traces
        for trace in ("5" * 32, "6" * 32):
            sources.add_spans(make(trace))
        assert db.observe(_ctx(sources=sources), WINDOW).seen, make.__name__
        # the database dominates: blaming the gateway's endpoint fails on both stacks
        assert not gateway.observe(_ctx(sources=sources), WINDOW).seen, make.__name__
    # the span name alone is stack-specific: Node's pg span is not named after the table
    assert not by_name.observe(_ctx(sources=sources), WINDOW).seen


def _connect_hang_trace(trace: str) -> list[Span]:
    """A checkout whose time went to Node's pool connect: it calls PostgreSQL, no table."""
    return [
        _span(trace, trace[:16], None, "POST /api/checkout", 0, 1100),
        _span(
            trace,
            "e" * 16,
            trace[:16],
            "pg-pool.connect",
            5,
            1010,
            **{"db.system.name": "postgresql", "db.namespace": "postgres"},
        ),
    ]


def test_trace_check_calls_the_database_system_on_a_connect_span() -> None:
    query = SpanQuery(service="payment-api", name="POST /api/checkout", min_duration_ms=300)
    database = TraceCheck(query, min_spans=2, dominant=Dominant(calls="postgresql"))
    table = TraceCheck(query, min_spans=2, dominant=Dominant(calls="payments"))
    sources = InMemorySources()
    for trace in ("7" * 32, "8" * 32):
        sources.add_spans(_connect_hang_trace(trace))
    assert database.observe(_ctx(sources=sources), WINDOW).seen
    # a connect names no table: blaming the payments table still fails
    assert not table.observe(_ctx(sources=sources), WINDOW).seen
    # paychaos' API names the system as the older `db.system`
    python = InMemorySources()
    for trace in ("7" * 32, "8" * 32):
        spans = _slow_db_trace(trace)
        spans[1] = dataclasses.replace(spans[1], attributes={"db.system": "postgresql"})
        python.add_spans(spans)
    assert database.observe(_ctx(sources=python), WINDOW).seen
    # the gateway dominating is not the database
    gateway_slow = InMemorySources()
    for trace in ("9" * 32, "a" * 32):
        gateway_slow.add_spans(
            [
                _span(trace, trace[:16], None, "POST /api/checkout", 0, 1100),
                _span(trace, "f" * 16, trace[:16], "db", 5, 20, **{"db.system": "postgresql"}),
                _span(
                    trace,
                    "0" * 16,
                    trace[:16],
                    "POST",
                    25,
                    1090,
                    **{"url.full": "http://gw/v1/charges"},
                ),
            ]
        )
    assert not database.observe(_ctx(sources=gateway_slow), WINDOW).seen


def _failed(span: Span, message: str = "", **attrs: object) -> Span:
    return dataclasses.replace(
        span,
        status="error",
        status_message=message,
        attributes={**span.attributes, **attrs},  # type: ignore[dict-item]
    )


def test_error_category_reads_either_stack_and_refuses_resets() -> None:
    base = _span("b" * 32, "b" * 16, "c" * 16, "x", 0, 1000)
    timeouts = [
        _failed(base, "TimeoutError", **{"error.type": "TimeoutError"}),  # paychaos' API
        _failed(base, "timeout exceeded when trying to connect"),  # node-postgres' pool
        _failed(base, "Query read timeout"),  # node-postgres' query_timeout
        _failed(base, "timeout expired"),  # node-postgres' client connect
        _failed(base, "Connection terminated due to connection timeout"),  # and its pool's
        _failed(base, "connect ETIMEDOUT 127.0.0.1:5432", **{"error.type": "ETIMEDOUT"}),
        _failed(base, "", **{"error.type": "timeout"}),  # OpenTelemetry's own example value
        dataclasses.replace(
            _failed(base),
            events=(SpanEvent("exception", 0, {"exception.message": "operation timed out"}),),
        ),
    ]
    for span in timeouts:
        assert error_category(span) == "timeout", span
    not_timeouts = [
        _failed(base, "ConnectionResetError", **{"error.type": "ConnectionResetError"}),
        _failed(base, "Connection terminated unexpectedly"),
        _failed(base, "connect ECONNREFUSED 127.0.0.1:5432", **{"error.type": "ECONNREFUSED"}),
        _failed(base, ""),
        # not failed: a timeout word on a span that succeeded is no error at all
        dataclasses.replace(base, status_message="timeout", attributes={"error.type": "timeout"}),
    ]
    for span in not_timeouts:
        assert error_category(span) is None, span


def test_trace_check_error_category_needs_timeouts_not_resets() -> None:
    query = SpanQuery(service="payment-api", min_duration_ms=900)
    check = TraceCheck(query, min_spans=3, error="timeout")
    assert check.query.status == "error"
    sources = InMemorySources()
    base = [_span("d" * 32, f"{i:016x}", "e" * 16, "pg-pool.connect", 0, 1000) for i in range(3)]
    # three long failures that were resets, one short timeout: not what a hang looks like
    sources.add_spans([_failed(s, "Connection terminated unexpectedly") for s in base])
    sources.add_spans(
        [
            _failed(
                _span("d" * 32, "9" * 16, "e" * 16, "pg-pool.connect", 0, 50), "Query read timeout"
            )
        ]
    )
    obs = check.observe(_ctx(sources=sources), WINDOW)
    assert not obs.seen and "0 matching" in obs.detail
    sources.add_spans([_failed(s, "timeout exceeded when trying to connect") for s in base])
    assert check.observe(_ctx(sources=sources), WINDOW).seen
    with pytest.raises(ValueError, match="failed spans"):
        TraceCheck(dataclasses.replace(query, status="ok"), error="timeout")


def test_trace_check_calls_selects_the_gateway_call_by_its_url_on_either_stack() -> None:
    query = SpanQuery(service="payment-api", status="error", attributes={"payment.method": "amex"})
    check = TraceCheck(query, min_spans=2, calls="/v1/charges")
    python, node = InMemorySources(), InMemorySources()
    for i in range(2):
        span = _span("f" * 32, f"{i + 1:016x}", "e" * 16, "POST /v1/charges", 0, 20)
        python.add_spans(
            [
                _failed(
                    span,
                    "gateway 503",
                    **{"payment.method": "amex", "url.full": "http://gw/v1/charges"},
                )
            ]
        )
        node.add_spans(
            [
                _failed(
                    dataclasses.replace(span, name="POST"),
                    **{"payment.method": "amex", "http.url": "http://gw/v1/charges"},
                )
            ]
        )
    assert check.observe(_ctx(sources=python), WINDOW).seen
    assert check.observe(_ctx(sources=node), WINDOW).seen
    # failed amex spans that call something else (the database) are not gateway calls
    db_only = InMemorySources()
    for i in range(2):
        span = _span("f" * 32, f"{i + 1:016x}", "e" * 16, "pg.query:INSERT postgres", 0, 20)
        db_only.add_spans(
            [_failed(span, "boom", **{"payment.method": "amex", "db.system.name": "postgresql"})]
        )
    assert not check.observe(_ctx(sources=db_only), WINDOW).seen
    # the gateway calls without payment.method (Node's before it carried it) do not match
    bare = InMemorySources()
    for i in range(2):
        span = _span("f" * 32, f"{i + 1:016x}", "e" * 16, "POST", 0, 20)
        bare.add_spans([_failed(span, **{"http.url": "http://gw/v1/charges"})])
    assert not check.observe(_ctx(sources=bare), WINDOW).seen


def test_trace_check_ignores_traces_whose_children_have_not_arrived() -> None:
    sources = InMemorySources()
    sources.add_spans([_span("3" * 32, "3" * 16, None, "POST /api/checkout", 0, 500)])
    check = TraceCheck(
        SpanQuery(name="POST /api/checkout"), dominant=Dominant(name_contains="payments")
    )
    obs = check.observe(_ctx(sources=sources), WINDOW)
    assert not obs.seen and "incomplete" in obs.detail


# --------------------------------------------------------------------- log


def _log(body: str, trace_id: str | None, level: str = "error", **attrs: object) -> LogRecord:
    return LogRecord(
        time_unix_ns=int((NOW - 5) * NS),
        level=level,
        body=body,
        service="payment-api",
        trace_id=trace_id,
        attributes=dict(attrs),  # type: ignore[arg-type]
    )


def test_log_check_wants_records_whose_trace_exists() -> None:
    sources = InMemorySources()
    check = LogCheck(LogQuery(level="error", body_contains="database unavailable"), min_count=2)
    assert not check.observe(_ctx(sources=sources), WINDOW).seen  # negative control: no logs
    sources.add_logs([_log("database unavailable", "4" * 32), _log("database unavailable", None)])
    obs = check.observe(_ctx(sources=sources), WINDOW)
    assert not obs.seen and "without a stored trace" in obs.detail  # logs but not correlated
    sources.add_spans(_slow_db_trace("4" * 32))
    sources.add_logs([_log("database unavailable", "4" * 32)])
    assert check.observe(_ctx(sources=sources), WINDOW).seen
    loose = LogCheck(LogQuery(body_contains="database unavailable"), min_count=3, correlated=False)
    assert loose.observe(_ctx(sources=sources), WINDOW).seen


# --------------------------------------------------------------------- rum


def _rum(kind: RumKind, name: str, message: str = "", **attrs: str) -> RumItem:
    return RumItem(
        kind=kind,
        name=name,
        time_unix_ns=int((NOW - 3) * NS),
        message=message,
        attributes=dict(attrs),
    )


def test_rum_check_counts_matching_items() -> None:
    sources = InMemorySources()
    check = RumCheck(
        RumQuery(kind="exception", name="PaymentError", attributes={"method": "crypto"}),
        min_count=2,
    )
    sources.add_rum([_rum("event", "click_payment_button", method="crypto")])
    assert not check.observe(_ctx(sources=sources), WINDOW).seen  # negative control
    sources.add_rum([_rum("exception", "PaymentError", method="crypto")] * 2)
    assert check.observe(_ctx(sources=sources), WINDOW).seen


# ----------------------------------------------------------------- hygiene


def test_hygiene_finds_a_card_number_in_a_log_a_span_or_rum() -> None:
    check = HygieneCheck()
    clean = InMemorySources()
    clean.add_logs(
        [
            _log(
                "payment succeeded",
                None,
                level="info",
                card_last4="4242",
                payment_id="12345678-1234-5678-1234-567812345678",
            )
        ]
    )
    clean.add_spans(_slow_db_trace("5" * 32))
    assert check.observe(_ctx(sources=clean), WINDOW).seen
    for leak in (
        lambda s: s.add_logs([_log("charging card 4242 4242 4242 4242", None)]),
        lambda s: s.add_spans(
            [_span("6" * 32, "6" * 16, None, "POST /api/checkout", 0, 5, card="4111111111111111")]
        ),
        lambda s: s.add_rum([_rum("log", "error", message="pan=5555555555554444")]),
    ):
        dirty = InMemorySources()
        leak(dirty)
        obs = check.observe(_ctx(sources=dirty), WINDOW)
        assert not obs.seen and "card number" in obs.detail


def test_hygiene_scans_a_long_run_window_by_window_and_misses_no_window() -> None:
    """The scan is split into short windows (one query per signal and window): a card
    number in any of them, first or last, is found; each record is read once."""
    check = HygieneCheck(("logs",))
    for age_s in (59.5, 35.0, 0.5):
        sources = InMemorySources()
        clean = [_log(f"payment {i} succeeded", None, level="info") for i in range(3)]
        leak = _log("charging card 4242 4242 4242 4242", None)
        leak = dataclasses.replace(leak, time_unix_ns=int((NOW - age_s) * NS))
        sources.add_logs([*clean, leak])
        obs = check.observe(_ctx(sources=sources), WINDOW)
        assert not obs.seen and "1 record(s) with a card number" in obs.detail, age_s
    sources = InMemorySources()
    sources.add_logs([_log(f"payment {i}", None, level="info") for i in range(4)])
    assert check.observe(_ctx(sources=sources), WINDOW).detail.startswith("4 record(s) scanned")


def test_metric_details_read_with_labels_and_units() -> None:
    """``holds: {}=0.287857`` was not readable: values carry units, series their labels."""
    from paychaos.checks.metric import probe_metric, show_value
    from paychaos.contracts.scenario import MetricProbe

    p95 = "histogram_quantile(0.95, sum by (le) (rate(shop_db_operation_duration_seconds_bucket[10s])))"
    assert show_value(p95, 0.287857) == "288 ms"
    ratio = 'sum(rate(x{status="error"}[15s])) / sum(rate(x[15s]))'
    assert show_value(ratio, 0.0393888) == "3.9 %"
    assert show_value("sum(shop_payments_total)", 1200.0) == "1200"
    # counts of a histogram's observations and of process restarts are not durations
    calls = 'sum(increase(shop_gateway_request_duration_seconds_count{outcome="error"}[30s]))'
    assert show_value(calls, 46.8) == "46.8"
    assert show_value('changes(process_start_time_seconds{job="gateway"}[1m])', 1.0) == "1"
    source = InMemoryMetricsSource()
    source.set_query(p95, [Sample({}, 0.287857)])
    ok, detail = probe_metric(source, MetricProbe(type="metric", query=p95, op="<", value=0.1))
    assert not ok
    assert detail.startswith("288 ms for (one series, no labels) (wanted < 100 ms;"), detail
    source.set_query(ratio, [Sample({"method": "visa"}, 0.02)])
    _, detail = probe_metric(source, MetricProbe(type="metric", query=ratio, op="<", value=0.01))
    assert '2.0 % for {method="visa"}' in detail and "{}=" not in detail
