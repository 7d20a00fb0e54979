"""After a crash of Prometheus, monitoring's floors start when its new process started.

That is a lower bound: a restarted Prometheus answers queries only after replaying
its write-ahead log, and scrapes seconds later, but a condition that needs no new
sample (a hole in its data) holds as soon as it answers; no reported time may be
below its floor.
"""

from __future__ import annotations

from paychaos.contracts.metrics import Sample
from paychaos.runner.floors import prometheus_back_at
from paychaos.stack.monitoring.memory import InMemoryMetricsSource

START = 'max(process_start_time_seconds{job="prometheus"})'


def test_blind_until_the_restarted_prometheus_started() -> None:
    metrics = InMemoryMetricsSource()
    metrics.set_query(START, [Sample({}, 1001.4)])
    assert prometheus_back_at(metrics, injected_unix_s=1000.0, end_unix_s=1010.0) == 1001.4


def test_no_restart_seen_keeps_the_faults_window() -> None:
    metrics = InMemoryMetricsSource()
    metrics.set_query(START, [Sample({}, 900.0)])  # started before the fault: not restarted
    assert prometheus_back_at(metrics, injected_unix_s=1000.0, end_unix_s=1005.0) == 1005.0
    strict = InMemoryMetricsSource(strict=True)  # Prometheus not answering
    assert prometheus_back_at(strict, injected_unix_s=1000.0, end_unix_s=1005.0) == 1005.0


def test_a_start_time_rounded_down_to_the_second_still_counts() -> None:
    metrics = InMemoryMetricsSource()
    metrics.set_query(START, [Sample({}, 1000.0)])  # killed at 1000.03, restarted in that second
    assert prometheus_back_at(metrics, injected_unix_s=1000.03, end_unix_s=1005.0) == 1000.03
