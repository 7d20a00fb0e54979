"""The budget's table (a unit in every cell), its JSON, and its line in the OOM demo."""

from __future__ import annotations

import json
import re
from pathlib import Path

from paychaos.budget.limits import DEFAULT_LIMITS, load_limits
from paychaos.budget.measure import NOT_SHIPPED, Measurement, MetricShare
from paychaos.budget.project import Explosion, project
from paychaos.budget.report import BudgetReport, rates_of, render_text, summary_line, to_json
from paychaos.oom.report import render_html, summary_table
from paychaos.oom.results import LayoutResult
from paychaos.stack.collector.store import SignalVolume


def _measurement(**changes: object) -> Measurement:
    m = Measurement(
        target="hand-made",
        window_s=600,
        until_unix_s=1_796_000_000,
        checkouts=1200,
        series_total=1750,
        head_series=1752,
        series_by_job={"prometheus": 634, "payment-api": 596, "alertmanager": 293, "instance": 25},
        series_by_metric={"shop_payments_total": 12, "shop_checkout_duration_seconds_bucket": 162},
        shipped_by_metric={"shop_payments_total": 12, "shop_checkout_duration_seconds_bucket": 162},
        top_metrics=[MetricShare("shop_checkout_duration_seconds_bucket", 162, "le", 18)],
        top_labels=[("le", 87), ("integration", 10)],
        samples_per_s=300.0,
        samples_in_window=180_000,
        scrape_interval_s=5.0,
        not_shipped=NOT_SHIPPED,
        volumes={
            "logs": SignalVolume(1246, 600_000),
            "traces": SignalVolume(6022, 4_160_000),
            "rum": None,
        },
        unmeasured={"rum": "the target names no rum store"},
    )
    for key, value in changes.items():
        setattr(m, key, value)
    return m


def _report(m: Measurement) -> BudgetReport:
    explosion = Explosion("shop_payments_total", values_per_checkout=1)
    projection = (
        project(rates_of(m), load_limits(), explosion=explosion) if m.checkouts > 0 else None
    )
    return BudgetReport(m, projection, 60.0, DEFAULT_LIMITS)


def test_rates_ship_only_the_stores_jobs_at_one_sample_a_minute() -> None:
    m = _measurement()
    rates = rates_of(m)
    assert m.shipped_series == 596 + 25  # prometheus and alertmanager stay in the SaaS
    assert rates.series == 621 and rates.dpm_per_series == 1.0
    assert (
        rates.log_bytes_per_checkout == 500 and rates.trace_bytes_per_checkout == 4_160_000 / 1200
    )
    assert rates.rum_bytes_per_checkout is None
    assert m.dpm_per_series == 300 * 60 / 1750
    assert round(m.head_agreement or 0, 4) == round(1750 / 1752 - 1, 4)


def test_every_cell_of_the_tables_has_a_unit() -> None:
    text = render_text(_report(_measurement()))
    assert "1,200 checkouts" in text and "500 B/checkout" in text and "3.47 kB/checkout" in text
    assert "RUM" in text and "rum not measured: the target names no rum store" in text
    assert "(this count -0.1%)" in text
    assert "le (18 values)" in text
    usage_rows = [
        line for line in text.splitlines() if re.match(r"\s+[\d,]+ checkouts/day\s", line)
    ]
    assert len(usage_rows) == 8  # four sizes, as measured and exploded
    for row in usage_rows:
        cells = re.split(r"\s{2,}", row.strip())
        assert cells[1].split(" (")[0].endswith("series"), row
        assert all("GB/month" in c for c in cells[2:4]), row
    assert "largest store that fits: " in text and "first limit hit: traces" in text
    assert "first limit hit: metrics (10,000 active series)" in text  # the explosion


def test_json_and_a_window_without_checkouts() -> None:
    data = to_json(_report(_measurement()))
    json.dumps(data)  # serialisable: no infinities
    fit = data["projection"]["fit"]
    assert (
        fit["first_limit"] == "traces"
        and fit["max_checkouts_per_day_by_limit"]["series"] == "unbounded"
    )
    assert data["projection"]["explosion"]["fit"]["first_limit"] == "series"
    empty = _report(_measurement(checkouts=0.0))
    assert not empty.complete and to_json(empty)["projection"] is None
    assert "cannot project: no checkouts" in render_text(empty)
    assert "not projected" in summary_line(empty)


def test_the_oom_demo_prints_the_budget_of_layout_c(tmp_path: Path) -> None:
    report = _report(_measurement())
    result = LayoutResult(
        key="C@t3.medium",
        title="Option C",
        instance="t3.medium",
        full_limit_bytes=4 * 2**30,
        scale=0.1,
        real_on_instance=("api",),
        modelled=("os-docker", "alloy"),
        off_instance=("prometheus", "collector"),
        budget=to_json(report),
        budget_text=render_text(report),
        budget_summary=summary_line(report),
    )
    table = summary_table([result])
    assert "C@t3.medium: free-tier fit (Grafana Cloud Free): 621 shipped series" in table
    assert "first limit traces" in table and "first limit series" in table
    html = render_html([result], command="paychaos oom-demo", notes=[])
    assert "Free-tier budget" in html and "largest store that fits" in html
