"""The t3 CPU credit model (AWS's published figures) and the noisy-neighbour analysis."""

from __future__ import annotations

import pytest

from paychaos.oom.credits import T3_CREDITS, CreditBalance
from paychaos.oom.results import CheckoutSlice, LayoutResult, analyse


def test_t3_medium_figures_and_baseline() -> None:
    spec = T3_CREDITS["t3.medium"]
    assert (spec.vcpu, spec.earned_per_hour, spec.max_balance, spec.launch_credits) == (
        2, 24.0, 576.0, 0.0,
    )  # fmt: skip
    assert spec.baseline_cores == pytest.approx(0.4)
    # at the baseline a t3.medium earns exactly what it spends: 24 credits/h = 0.4 vCPU
    assert spec.earned_per_hour / 60 == pytest.approx(spec.baseline_cores)


def test_balance_earns_spends_and_sets_the_quota() -> None:
    bucket = CreditBalance(T3_CREDITS["t3.medium"], balance=1.0)
    assert bucket.quota_cores() == 2.0
    bucket.step(dt_s=60.0, cpu_s=120.0)  # both vCPUs busy for a minute: 2 credits spent
    assert bucket.balance == 0.0 and bucket.quota_cores() == pytest.approx(0.4)
    for _ in range(600):  # ten minutes at the baseline: earning and spending cancel
        bucket.step(dt_s=1.0, cpu_s=0.4)
    assert bucket.quota_cores() == pytest.approx(0.4)
    bucket.step(dt_s=3600.0, cpu_s=0.0)  # an idle hour earns 24
    assert bucket.balance == pytest.approx(24.0) and bucket.quota_cores() == 2.0
    bucket.step(dt_s=10 * 86400.0, cpu_s=0.0)
    assert bucket.balance == 576.0  # capped at 24 h of earning


def test_phases_side_by_side() -> None:
    result = LayoutResult(
        key="A@t3.medium", title="t", instance="t3.medium", full_limit_bytes=1,
        scale=1.0, real_on_instance=("api",), modelled=(), off_instance=(), limit_bytes=1,
        credit_switches=[(0.0, "credits spent"), (10.0, "with credits"), (30.0, "credits spent")],
        credit_trace=[(0.0, 0.0, 0.4, 0, 0), (9.5, 0.0, 0.4, 95, 75),
                      (10.0, 576.0, 2.0, 100, 75), (29.5, 575.9, 2.0, 295, 75),
                      (30.0, 0.0, 0.4, 300, 75), (39.5, 0.0, 0.4, 395, 150)],
    )  # fmt: skip
    result.slices = [  # ABBA: spent, full, full, spent
        CheckoutSlice(0, 10, 64, sent=100, succeeded=98, failed=2, latencies_ms=[800.0] * 100),
        CheckoutSlice(10.1, 20, 64, sent=100, succeeded=100, latencies_ms=[50.0] * 100),
        CheckoutSlice(20.1, 30, 64, sent=100, succeeded=100, latencies_ms=[60.0] * 100),
        CheckoutSlice(30.1, 40, 64, sent=100, succeeded=97, failed=3, latencies_ms=[700.0] * 100),
    ]
    result = analyse(result)
    spent, with_credits = result.credit_phases
    assert spent["phase"] == "credits spent" and with_credits["phase"] == "with credits"
    assert spent["blocks"] == 2.0 and with_credits["blocks"] == 1.0
    assert spent["sent"] == 200.0 and spent["failed"] == 5.0 and with_credits["sent"] == 200.0
    assert with_credits["p95_ms"] == 60.0 and spent["p95_ms"] == 800.0
    assert spent["quota_cores"] == pytest.approx(0.4) and with_credits["quota_cores"] == 2.0
    assert spent["throttled_share"] == pytest.approx(150 / 190)  # 75/95 and 75/95
    assert with_credits["throttled_share"] == 0.0
    assert result.verdict.startswith("NOISY NEIGHBOUR: checkout p95 800 ms with the t3 credits")
    assert "(13.3x)" in result.verdict


def test_the_credits_plan_is_abba() -> None:
    from paychaos.oom.runner import TrafficPlan, credit_schedule

    plan = TrafficPlan.credits(30.0)
    assert plan.duration_s == 60.0
    assert credit_schedule(plan) == [
        (0.0, "credits spent"), (15.0, "with credits"), (30.0, "with credits"),
        (45.0, "credits spent"),
    ]  # fmt: skip
