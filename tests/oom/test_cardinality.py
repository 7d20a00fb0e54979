"""The cardinality explosion, in memory: the bad deploy's metric in the API, and what the
analysis makes of a run's observations (victim, blind time per signal, the series alert)."""

from __future__ import annotations

import asyncio
import signal

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from paychaos.oom.results import CheckoutSlice, LayoutResult, Sample, analyse
from paychaos.stack.api.order_label import METRIC_NAME, SERIES_PER_ORDER, OrderLabel

MIB = 2**20
REAL = ("api", "collector", "prometheus", "alertmanager")


def _series(registry: CollectorRegistry) -> int:
    lines = generate_latest(registry).decode().splitlines()
    return sum(1 for line in lines if line.startswith(METRIC_NAME))


def test_the_bad_metric_adds_series_per_order_only_while_deployed() -> None:
    registry = CollectorRegistry()
    label = OrderLabel(registry)
    label.observe("visa", "success", "ord-0", 0.1)  # not deployed: nothing
    assert _series(registry) == 0

    async def deployed() -> None:
        label.deploy(ttl_s=0.2)
        for i in range(5):
            label.observe("visa", "success", f"ord-{i}", 0.1)
        label.observe("visa", "success", "4111111111111111", 0.1)  # a card number as order id
        assert _series(registry) == 6 * SERIES_PER_ORDER
        assert "4111111111111111" not in generate_latest(registry).decode()
        await asyncio.sleep(0.4)  # the TTL rolls it back by itself

    asyncio.run(deployed())
    assert not label.active and _series(registry) == 0
    assert label.rollback() is False


def _sample(t: float, usage_mib: int, kills: int, prometheus_up: bool) -> Sample:
    alive = {name: True for name in REAL}
    alive["prometheus"] = prometheus_up
    return Sample(
        t=t,
        usage_bytes=usage_mib * MIB,
        limit_bytes=300 * MIB,
        oom_kills=kills,
        rss_bytes={},
        alive=alive,
        blind=not prometheus_up,
        answering={"prometheus": prometheus_up, "collector": True, "alertmanager": True},
    )


def _result(samples: list[Sample], exits: list[tuple[float, str, int]]) -> LayoutResult:
    result = LayoutResult(
        key="A@t3.medium", title="t", instance="t3.medium", full_limit_bytes=4096 * MIB,
        scale=0.05, real_on_instance=REAL, modelled=("tempo",), off_instance=(),
        limit_bytes=300 * MIB, samples=samples, exits=exits, bad_deploy_t=10.0,
        head_series=[(5.0, 1500), (20.0, 9000), (30.0, 17000), (34.0, 1800)],
    )  # fmt: skip
    result.slices = [
        CheckoutSlice(0, 10, 64, sent=100, succeeded=100, latencies_ms=[100.0] * 100),
        CheckoutSlice(10, 40, 64, sent=300, succeeded=290, failed=10, latencies_ms=[900.0] * 300),
    ]
    return result


def test_a_killed_prometheus_is_named_and_its_blind_time_counted() -> None:
    samples = [_sample(float(t), 200 + 3 * t, 0, True) for t in range(0, 30)]
    samples += [_sample(30.0 + t, 250, 1, t >= 4) for t in range(0, 10)]
    result = analyse(_result(samples, [(29.8, "prometheus", -signal.SIGKILL)]))
    assert [k.component for k in result.kills] == ["prometheus"]
    # from the death on record (29.8 s) to the first sample that saw it answer (34 s)
    assert result.blind_by_signal["metrics"] == pytest.approx(4.2)
    assert result.blind_by_signal["alerts"] == pytest.approx(4.2)
    assert result.blind_s == pytest.approx(4.2) and result.prometheus_down_s == pytest.approx(4.2)
    assert result.blind_by_signal["traces"] == 0.0
    assert result.peak_head_series == 17000
    assert result.pressure["before_p95_ms"] == 100.0 and result.pressure["after_p95_ms"] == 900.0
    assert result.verdict.startswith("OOM-KILLED: the kernel killed prometheus")
    growth = next(a for a in result.alerts if a.name == "ActiveSeriesGrowth")
    assert growth.expected and not growth.fired and "5 min" in growth.note


def test_a_kill_and_restart_between_two_samples_still_counts_as_blind() -> None:
    """Every sample saw Prometheus answer: the supervisor restarted it and it was ready
    again before the next one (CI saw this at 7be97b3, 0 s blind for a killed
    Prometheus). The kill is on record, so the blind time runs from it to that sample."""
    samples = [_sample(t / 2, 200 + t, 0, True) for t in range(0, 60)]
    samples += [_sample(30.0 + t / 2, 250, 1, True) for t in range(0, 20)]
    result = analyse(_result(samples, [(29.7, "prometheus", -signal.SIGKILL)]))
    assert [k.component for k in result.kills] == ["prometheus"]
    assert result.blind_by_signal["metrics"] == pytest.approx(0.3)
    assert result.blind_by_signal["alerts"] == pytest.approx(0.3)
    assert result.blind_by_signal["traces"] == 0.0
    assert result.blind_s == pytest.approx(0.3)
    assert any(line.startswith("ServiceDown (job prometheus)") for line in result.could_not_fire)


def test_overlapping_outages_are_counted_once() -> None:
    """A death on record inside an interval the samples saw down adds nothing twice."""
    samples = [_sample(float(t), 200, 0, not 10 <= t < 14) for t in range(0, 20)]
    result = analyse(_result(samples, [(9.5, "prometheus", -signal.SIGTERM)]))
    assert result.blind_by_signal["metrics"] == pytest.approx(4.5)  # 9.5 s to 14 s


def test_a_layout_not_killed_says_so_with_its_headroom() -> None:
    samples = [_sample(float(t), 200, 0, True) for t in range(0, 40)]
    result = _result(samples, [])
    result.alerts_seen["ActiveSeriesGrowth"] = 25.0
    result = analyse(result)
    assert result.verdict.startswith("NOT KILLED: no OOM kill, head series peaked at 17,000")
    assert "100 MiB headroom left" in result.verdict
    growth = next(a for a in result.alerts if a.name == "ActiveSeriesGrowth")
    assert growth.fired and growth.note == "fired at 25s (15s after the deploy), no kill followed"
    assert result.could_not_fire == []  # never blind


def test_the_kernel_log_names_the_victim_and_the_fast_rule_warns_before_the_kill() -> None:
    samples = [_sample(float(t), 200 + 3 * t, 0, True) for t in range(0, 30)]
    samples += [_sample(30.0 + t, 250, 1, t >= 4) for t in range(0, 10)]
    result = _result(samples, [(29.8, "prometheus", -signal.SIGKILL)])
    result.kernel_kills = [(29.6, "prometheus", 4242, "prometheus")]
    result.alerts_seen["ActiveSeriesSurge"] = 22.0
    result.alerts_seen["InstanceOOMKill"] = 37.0
    result = analyse(result)
    assert len(result.kills) == 1  # the SIGKILL record of the same process is not counted twice
    kill = result.kills[0]
    assert (kill.component, kill.named_by) == ("prometheus", "kernel log")
    assert "killed process 4242 (prometheus)" in kill.evidence
    surge = next(a for a in result.alerts if a.name == "ActiveSeriesSurge")
    assert surge.fired and "8s BEFORE the first kill" in surge.note, surge.note
    assert result.could_not_fire[0].startswith("ServiceDown (job prometheus)")
    assert "InstanceOOMKill: only at 37s, 7s after the kill" in result.could_not_fire[1]
    assert any(
        line.startswith("PrometheusRestarted: did NOT fire") for line in result.could_not_fire
    )


def test_a_kill_the_kernel_log_missed_falls_back_to_the_sigkill_exit() -> None:
    samples = [_sample(float(t), 200, 0, True) for t in range(0, 30)]
    samples += [_sample(30.0 + t, 250, 1, t >= 4) for t in range(0, 10)]
    result = analyse(_result(samples, [(29.8, "api", -signal.SIGKILL)]))
    assert [(k.component, k.named_by) for k in result.kills] == [("api", "SIGKILL exit")]


def test_a_layout_driven_to_a_series_target_says_whether_it_got_there() -> None:
    samples = [_sample(float(t), 200, 0, True) for t in range(0, 40)]
    result = _result(samples, [])
    result.series_target, result.series_target_from = 16000, "A@t3.medium"
    assert "(reached the 16,000 series A@t3.medium peaked at)" in analyse(result).verdict
    result = _result(samples, [])
    result.series_target, result.series_target_from = 18000, "A@t3.medium"
    assert "(did NOT reach the 18,000 series" in analyse(result).verdict


def test_until_kill_ends_at_the_first_kill_or_at_the_series_target() -> None:
    from paychaos.oom.runner import AFTER_KILL_S, RunSettings, _until_kill_end

    off = RunSettings(bad_deploy_at_s=8.0)
    on = RunSettings(bad_deploy_at_s=8.0, until_kill=True)
    result = _result([_sample(20.0, 200, 0, True)], [])
    assert _until_kill_end(off, result, 20.0) is None  # the sale runs its length
    assert _until_kill_end(on, result, 20.0) is None  # no kill yet
    result.samples.append(_sample(21.0, 250, 1, False))
    assert _until_kill_end(off, result, 21.0) is None
    assert _until_kill_end(on, result, 21.0) == 21.0 + AFTER_KILL_S
    assert result.ended_by.startswith("first kernel OOM kill (counted at 21.0s)")

    target = RunSettings(
        bad_deploy_at_s=8.0, until_kill=True, series_target=17000, series_target_from="A@t3.medium"
    )
    large = _result([_sample(20.0, 200, 0, True)], [])
    large.head_series = [(18.0, 16999)]
    assert _until_kill_end(target, large, 20.0) is None
    large.head_series.append((20.0, 17001))
    assert _until_kill_end(target, large, 20.0) == 20.0 + AFTER_KILL_S
    assert "head series 17,001 at 20.0s >= 17,000 (the peak of A@t3.medium)" in large.ended_by
