"""Negative control for trace and log-correlation checks: a stack that exports no traces.

The services still trace in-process (their logs carry trace ids) and still
export their logs; only the span exporter is off (``OTEL_TRACES_EXPORTER=none``).
So the trace check fails for want of spans, and the correlated-log check fails
because the logs' traces are not stored, not because there are no logs: the
same check without correlation holds on the same records.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paychaos.checks import CheckContext, LogCheck, TraceCheck, Window
from paychaos.contracts.scenario import Traffic
from paychaos.contracts.signals import LogQuery, SpanQuery
from paychaos.runner.traffic import AsyncTrafficDriver
from paychaos.stack.collector.client import CollectorClient
from paychaos.stack.monitoring.promapi import PrometheusClient
from tests.live_stack import LiveStack as StackHandle
from tests.live_stack import live_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def untraced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    with live_stack(
        tmp_path_factory.mktemp("untraced"),
        scrape_interval_s=1.0,
        gateway_latency_scale=0.05,
        extra_env=(("OTEL_TRACES_EXPORTER", "none"),),
    ) as live:
        yield live


def test_without_tracing_trace_and_correlated_log_checks_fail(
    untraced: StackHandle, tmp_path: Path
) -> None:
    since = time.time()
    driver = AsyncTrafficDriver(
        untraced.urls["api"], untraced.urls["collector"], ledger_dir=tmp_path
    )
    driver.start(Traffic(rate_per_s=10, duration_s=3, rum=False))
    assert driver.wait(timeout_s=30)
    driver.stop()
    assert driver.stats().completed > 0
    time.sleep(1.5)  # more than the services' export delay
    collector = CollectorClient(untraced.urls["collector"])
    ctx = CheckContext(
        metrics=PrometheusClient(untraced.urls["prometheus"]),
        traces=collector,
        logs=collector,
        rum=collector,
        notifications=collector,
    )
    window = Window(since)
    spans = TraceCheck(SpanQuery(service="payment-api", name="POST /api/checkout"))
    assert not spans.observe(ctx, window).seen
    # The logs are there; what fails is their correlation to traces.
    present = LogCheck(LogQuery(service="payment-api"), correlated=False).observe(ctx, window)
    assert present.seen, present.detail
    logs = LogCheck(LogQuery(service="payment-api"), correlated=True).observe(ctx, window)
    assert not logs.seen and "without a stored trace" in logs.detail, logs.detail
