"""The projection's arithmetic on hand-made figures, and the limits file's validation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from paychaos.budget.limits import DEFAULT_LIMITS, FreeTier, load_limits
from paychaos.budget.project import (
    Explosion,
    Rates,
    fit,
    parse_explosion,
    project,
    series_at,
    usage_at,
)
from paychaos.cli import main
from paychaos.contracts.errors import InvalidInput

TIER = FreeTier.model_validate(
    {
        "name": "test tier",
        "source": "hand-made",
        "taken": "2026-11-30",
        "metrics": {"active_series": 10_000, "included_dpm_per_series": 1},
        "logs": {"gb_per_month": 50},
        "traces": {"gb_per_month": 50},
        "gb_bytes": 10**9,
        "days_per_month": 30,
    }
)
# 800 shipped series (12 of them shop_payments_total), 1 DPM; per checkout: 1000 B of
# logs, 5000 B of spans, 250 B of frontend events (billed as logs)
RATES = Rates(
    series=800,
    metric_series={"shop_payments_total": 12, "http_requests_total": 40},
    dpm_per_series=1,
    log_bytes_per_checkout=1000,
    trace_bytes_per_checkout=5000,
    rum_bytes_per_checkout=250,
)
PER_CUSTOMER = Explosion("shop_payments_total", values_per_checkout=1)


def test_usage_at_a_store_size_by_hand() -> None:
    series, logs, traces = usage_at(RATES, TIER, 10_000)
    assert (series.used, series.allowed, series.unit) == (800, 10_000, "series")
    assert logs.used == pytest.approx(1250 * 10_000 * 30 / 1e9)  # 0.375 GB/month
    assert traces.used == pytest.approx(5000 * 10_000 * 30 / 1e9)  # 1.5 GB/month
    assert traces.share == pytest.approx(1.5 / 50) and traces.fits


def test_largest_store_and_first_limit_by_hand() -> None:
    result = fit(RATES, TIER)
    assert result.max_by_limit["series"] == math.inf  # series do not grow with checkouts
    assert result.max_by_limit["logs"] == pytest.approx(50e9 / (1250 * 30))  # 1,333,333
    assert result.max_by_limit["traces"] == pytest.approx(50e9 / (5000 * 30))  # 333,333
    assert result.largest == pytest.approx(333_333.33, rel=1e-6)
    assert result.first_limit == "traces"
    # frontend events not billed as logs: only the logs' maximum moves
    no_rum = fit(RATES, TIER.model_copy(update={"rum_counts_as": "none"}))
    assert no_rum.max_by_limit["logs"] == pytest.approx(50e9 / (1000 * 30))
    # logs heavier than traces: logs are hit first
    chatty = Rates(series=800, log_bytes_per_checkout=9000, trace_bytes_per_checkout=5000)
    assert fit(chatty, TIER).first_limit == "logs"
    assert fit(chatty, TIER).largest == pytest.approx(50e9 / (9000 * 30))


def test_data_points_per_minute_multiply_the_billable_series() -> None:
    at_5s = Rates(series=800, dpm_per_series=12, trace_bytes_per_checkout=5000)
    assert usage_at(at_5s, TIER, 100)[0].used == 9600  # billed on DPM: 12 x 800
    assert fit(at_5s, TIER).first_limit == "traces"
    at_4s = Rates(series=800, dpm_per_series=15, trace_bytes_per_checkout=5000)
    over = fit(at_4s, TIER)
    assert over.max_by_limit["series"] == 0 and over.largest == 0
    assert over.first_limit == "series"  # over the limit at any size


def test_a_per_customer_label_makes_series_the_first_limit() -> None:
    # shop_payments_total's 12 series become one per checkout: 788 + N series
    assert series_at(RATES, 100, PER_CUSTOMER) == 788 + 100
    assert series_at(RATES, 5, PER_CUSTOMER) == 800  # fewer values than series: unchanged
    exploded = fit(RATES, TIER, PER_CUSTOMER)
    assert exploded.max_by_limit["series"] == pytest.approx(10_000 - 788)  # 9,212 a day
    assert exploded.first_limit == "series"
    assert exploded.largest == pytest.approx(9212)
    # at 2 DPM the tier takes 5,000 shipped series: 4,212 checkouts a day
    two_dpm = Rates(**{**RATES.__dict__, "dpm_per_series": 2})
    assert fit(two_dpm, TIER, PER_CUSTOMER).largest == pytest.approx(5000 - 788)
    # a label on a histogram family: each value brings 20 series
    histogram = Explosion("http_requests_total", values_per_checkout=0.5, series_per_value=20)
    assert fit(RATES, TIER, histogram).largest == pytest.approx((10_000 - 760) / 10)
    proj = project(RATES, TIER, (100, 10_000), PER_CUSTOMER)
    assert proj.fit.first_limit == "traces" and proj.exploded_fit is not None
    assert proj.exploded_usage[10_000][0].used == 788 + 10_000
    assert proj.exploded_usage[10_000][0].fits is False


def test_a_fixed_number_of_values_fits_or_not_at_any_size() -> None:
    fits = fit(RATES, TIER, Explosion("shop_payments_total", values_per_day=5000))
    assert fits.max_by_limit["series"] == math.inf and fits.first_limit == "traces"
    over = fit(
        RATES, TIER, Explosion("shop_payments_total", values_per_day=5000, series_per_value=2)
    )
    assert over.max_by_limit["series"] == 0 and over.first_limit == "series"  # 10,788 series


def test_unmeasured_volumes_are_said_not_guessed() -> None:
    no_collector = Rates(series=800, log_bytes_per_checkout=None, trace_bytes_per_checkout=None)
    result = fit(no_collector, TIER)
    assert result.unmeasured == ["logs", "traces"]
    assert result.largest == math.inf and result.first_limit is None
    assert usage_at(no_collector, TIER, 1000)[1].used is None
    silent = fit(Rates(series=800, log_bytes_per_checkout=0, trace_bytes_per_checkout=0), TIER)
    assert silent.largest == math.inf and silent.first_limit is None and not silent.unmeasured


def test_parse_explosion() -> None:
    assert parse_explosion("shop_payments_total") == PER_CUSTOMER
    assert parse_explosion("m:5000") == Explosion("m", values_per_day=5000)
    assert parse_explosion("m:0.5/checkout:3") == Explosion(
        "m", values_per_checkout=0.5, series_per_value=3
    )
    for bad in ("m:many", "9metric", "m:1/checkout:0", "m:-3", "m:1:2:3"):
        with pytest.raises(InvalidInput, match="--explode"):
            parse_explosion(bad)


def test_the_shipped_limits_file_is_valid_and_dated() -> None:
    tier = load_limits()
    assert (tier.metrics.active_series, tier.logs.gb_per_month, tier.traces.gb_per_month) == (
        10_000,
        50,
        50,
    )
    assert "7.3" in tier.source and tier.taken.year >= 2025
    assert DEFAULT_LIMITS.name == "grafana-cloud-free.yaml"


BAD_FILES = {
    "negative series": (
        "name: t\nsource: s\ntaken: 2026-11-30\nmetrics:\n  active_series: -5\n"
        "logs: {gb_per_month: 50}\ntraces: {gb_per_month: 50}\n",
        ":5: metrics.active_series: must be > 0",
    ),
    "unknown field": (
        "name: t\nsource: s\ntaken: 2026-11-30\nmetrics:\n  active_series: 10\n"
        "logs: {gb_per_month: 50}\ntraces: {gb_per_month: 50}\nlog_gb: 3\n",
        ":8: log_gb: unknown field",
    ),
    "not a number": (
        "name: t\nsource: s\ntaken: 2026-11-30\nmetrics:\n  active_series: 10\n"
        "logs:\n  gb_per_month: lots\ntraces: {gb_per_month: 50}\n",
        ":7: logs.gb_per_month: ",
    ),
    "bad yaml": ("name: t\nmetrics: [\n", ":3: (yaml): "),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_limits_file_names_file_line_field_and_exits_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, expected = BAD_FILES[case]
    path = tmp_path / "tier.yaml"
    path.write_text(text)
    # no stack runs in this state dir: the limits are checked before the target is read
    code = main(["--state-dir", str(tmp_path / "state"), "budget", "--limits", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{path}{expected}" in err


def test_a_missing_limits_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.yaml"
    assert main(["--state-dir", str(tmp_path), "budget", "--limits", str(path)]) == 2
    assert f"{path}:1: (file): cannot read" in capsys.readouterr().err
