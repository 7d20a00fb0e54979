"""Monitoring is blind after a crash of Prometheus until the new process scrapes again."""

from __future__ import annotations

from paychaos.contracts.metrics import Sample
from paychaos.runner.floors import prometheus_back_at
from paychaos.stack.monitoring.memory import InMemoryMetricsSource

START = 'max(process_start_time_seconds{job="prometheus"})'


def test_blind_until_the_restarted_prometheus_first_scraped_itself() -> None:
    metrics = InMemoryMetricsSource()
    metrics.set_query(START, [Sample({}, 1000.4)])
    first = 'min_over_time((timestamp(up{job="prometheus"}) > 1000.400)[5m:250ms])'
    metrics.set_query(first, [Sample({"job": "prometheus"}, 1005.9)])
    assert (
        prometheus_back_at(metrics, injected_unix_s=1000.0, end_unix_s=1005.0) == 1005.9
    )  # past the TTL


def test_no_restart_seen_keeps_the_faults_window() -> None:
    metrics = InMemoryMetricsSource()
    metrics.set_query(START, [Sample({}, 900.0)])  # started before the fault: not restarted
    assert prometheus_back_at(metrics, injected_unix_s=1000.0, end_unix_s=1005.0) == 1005.0
    strict = InMemoryMetricsSource(strict=True)  # Prometheus not answering
    assert prometheus_back_at(strict, injected_unix_s=1000.0, end_unix_s=1005.0) == 1005.0


def test_a_start_time_rounded_down_to_the_second_still_counts() -> None:
    metrics = InMemoryMetricsSource()
    metrics.set_query(START, [Sample({}, 1000.0)])  # killed at 1000.03, restarted in that second
    first = 'min_over_time((timestamp(up{job="prometheus"}) > 1000.030)[5m:250ms])'
    metrics.set_query(first, [Sample({"job": "prometheus"}, 1006.1)])
    assert prometheus_back_at(metrics, injected_unix_s=1000.03, end_unix_s=1005.0) == 1006.1
