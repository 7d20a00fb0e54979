"""Timings that make sense: floors are lower bounds, late alert firings are shown.

Found in real reports: a recovery of 5.0 s under a floor of 16 s (the floor
counted the probe's whole ``[15s]`` window, though a ratio drops below its
threshold once enough clean samples are in: the floor was wrong), recoveries
and a metric detection of 0.0 s (probes and checks judged on samples scraped
before the revert or the fault: the measurement was wrong), and
``DatabaseLatencyHigh{operation="select_payment"}`` first firing 11 s after the
run said "recovered".
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from paychaos.checks.metric import MetricCheck
from paychaos.cli.run import _print_summary
from paychaos.contracts.expectations import CheckContext, Window
from paychaos.contracts.metrics import Sample
from paychaos.contracts.scenario import AlertExpectation, MetricExpectation, TraceExpectation
from paychaos.report.html import render_html
from paychaos.report.model import (
    AlertEvent,
    ExpectationRecord,
    FaultRecord,
    RunRecord,
    distinguishing_labels,
)
from paychaos.runner.floors import detection_floor_s, recovery_floor_s

T0 = 1_800_000_000.0


def _exp(
    name: str, detected: float | None, floor: float | None, active_s: float | None = None
) -> ExpectationRecord:
    exp = ExpectationRecord(
        name, "metric", name, "eventually", "f", 30, "passed", "", detected, floor
    )
    exp.active_s = active_s
    return exp


def _run(recovered_s: float | None = 4.0) -> RunRecord:
    rec = RunRecord("db-latency", "slow DB", "x.yaml", status="passed")
    rec.started_unix_s = rec.traffic_started_unix_s = T0
    rec.ended_unix_s = T0 + 60
    rec.faults = [FaultRecord("f", "db-latency", "proxy/postgres", {}, 10, 25, T0 + 10, T0 + 35)]
    rec.recovered_s, rec.recovery_floor_s = recovered_s, 1.0
    rec.alert_events = [
        AlertEvent("DatabaseLatencyHigh", {"component": "database", "operation": "insert_payment",
                                           "severity": "warning"}, T0 + 28, T0 + 40),
        AlertEvent("DatabaseLatencyHigh", {"component": "database", "operation": "select_payment",
                                           "severity": "warning"}, T0 + 50, T0 + 55),
    ]  # fmt: skip
    return rec


def test_the_recovery_floor_is_one_scrape_whatever_the_probe_windows() -> None:
    assert recovery_floor_s(1.0) == 1.0  # before: 1 s + the longest window (16 s for [15s])


def test_detection_floors_are_lower_bounds() -> None:
    alert = AlertExpectation(type="alert", alert="DatabaseLatencyHigh", within_s=30)
    quiet = AlertExpectation(type="alert", alert="X", within_s=30, notification=False)
    metric = MetricExpectation(type="metric", query="up", op="==", value=0, within_s=9, for_s=3)
    trace = TraceExpectation(type="trace", service="payment-api", within_s=9)
    kw: dict[str, Any] = {
        "scrape_interval_s": 1.0,
        "group_wait_s": 1.0,
        "rule_for_s": {"DatabaseLatencyHigh": 15},
    }
    assert detection_floor_s(alert, **kw) == 16.0  # `for` + group_wait; evaluation waits 0..1 s
    assert detection_floor_s(quiet, **kw) == 0.0
    assert detection_floor_s(metric, **kw) == 4.0  # one whole scrape + for_s
    assert detection_floor_s(trace, **kw) == 0.0  # the batch timer may fire right after


def test_times_below_floor_names_each_one() -> None:
    rec = _run(recovered_s=0.0)
    rec.expectations = [
        _exp("ok", 2.0, 1.0),
        _exp("early", 0.005, 1.0),
        _exp("active before the fault", 0.5, 1.0, active_s=-3.0),
        _exp("not detected", None, 1.0),
    ]
    assert rec.times_below_floor() == [
        "early: detected 0.01s < floor 1.00s",
        "recovery 0.00s < floor 1.00s",
    ]
    rec.recovered_s = 1.2
    assert json.loads(rec.to_json())["times_below_floor"] == ["early: detected 0.01s < floor 1.00s"]


class _Metrics:
    def query(self, _expr: str, at: float | None = None) -> list[Sample]:
        return [Sample({}, 1.0)]


def test_a_metric_condition_held_for_for_s_is_detected_when_it_has_held_that_long() -> None:
    now = [100.0]
    none: Any = None
    ctx = CheckContext(_Metrics(), none, none, none, none, clock=lambda: now[0])  # type: ignore[arg-type]
    check = MetricCheck("up", ">", 0, for_s=3)
    assert not check.observe(ctx, Window(since_unix_s=99)).seen
    now[0] = 103.0
    obs = check.observe(ctx, Window(since_unix_s=99))
    assert obs.seen and obs.at_unix_s == 103.0  # not 100: for_s is part of its floor


def test_an_alert_first_firing_after_recovery_is_a_late_firing_in_every_view(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rec = _run(recovered_s=4.0)  # recovered at T0 + 39: select_payment fires 11 s later
    [late] = rec.late_firings()
    assert late.title == 'DatabaseLatencyHigh{operation="select_payment"}'
    assert late.after_recovery_s == pytest.approx(11.0)
    doc = rec.to_dict()
    assert doc["late_firings"] == [
        {"name": "DatabaseLatencyHigh", "labels": {"operation": "select_payment"},
         "after_recovery_s": pytest.approx(11.0)}
    ]  # fmt: skip
    _print_summary([rec])
    out = capsys.readouterr().out
    assert (
        'late firing: DatabaseLatencyHigh{operation="select_payment"} first fired 11.0s after '
        "recovery" in out
    )
    page = render_html([rec])
    assert (
        "Late firings" in page
        and "DatabaseLatencyHigh{operation=&quot;select_payment&quot;}" in page
    )
    rec.recovered_s = None  # not recovered: nothing is "late"
    assert rec.late_firings() == []


def test_alert_markers_carry_the_labels_that_tell_firings_apart() -> None:
    rec = _run()
    first, second = rec.alert_events
    assert distinguishing_labels(first, rec.alert_events) == {"operation": "insert_payment"}
    assert distinguishing_labels(second, rec.alert_events) == {"operation": "select_payment"}
    lone = AlertEvent("ServiceDown", {"job": "api", "severity": "critical"}, T0, T0)
    assert distinguishing_labels(lone, [lone]) == {"job": "api"}
