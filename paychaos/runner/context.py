"""What a run reads through: the checks' context, the default traffic, the rules' ``for``.

Example::

    ctx = make_context(handle, driver)
    ctx.metrics.query("up")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from paychaos.checks.base import CheckContext
from paychaos.contracts.errors import StackError
from paychaos.contracts.signals import AlertNotificationSource, LogSource, RumSource, TraceSource
from paychaos.runner.observe import CachedMetrics
from paychaos.runner.stackctl import StackHandle
from paychaos.runner.traffic import AsyncTrafficDriver, TrafficDriver
from paychaos.scenario.model import Scenario
from paychaos.stack.collector.client import CollectorClient
from paychaos.stack.monitoring.promapi import MetricsSource, PrometheusClient


def default_traffic(handle: StackHandle, scenario: Scenario, ledger_dir: Path) -> TrafficDriver:
    """The in-process driver, its client ledger in ``ledger_dir``."""
    return AsyncTrafficDriver(
        handle.urls["api"], handle.urls.get("collector"), ledger_dir=ledger_dir
    )


def make_context(
    handle: StackHandle,
    driver: TrafficDriver,
    *,
    metrics: MetricsSource | None = None,
    collector: object | None = None,
    clock: Callable[[], float] = time.time,
) -> CheckContext:
    """The sources checks read: the stack's Prometheus and collector, unless overridden."""
    signals = collector or CollectorClient(handle.urls["collector"], timeout_s=5.0)
    prom = metrics or PrometheusClient(handle.urls.get("prometheus", ""), timeout_s=2.0)
    if not (
        isinstance(signals, TraceSource)
        and isinstance(signals, LogSource)
        and isinstance(signals, RumSource)
        and isinstance(signals, AlertNotificationSource)
    ):
        raise TypeError(f"{type(signals).__name__} is not a trace/log/RUM/alert source")
    return CheckContext(
        metrics=CachedMetrics(prom),
        traces=signals,
        logs=signals,
        rum=signals,
        notifications=signals,
        api_url=handle.urls["api"],
        gateway_url=handle.urls["gateway"],
        client_ledger=driver,
        clock=clock,
    )


def rule_for_s(metrics: MetricsSource) -> dict[str, float]:
    """Each alerting rule's ``for`` in seconds (empty when the source cannot tell)."""
    rules = getattr(metrics, "rules", None)
    if rules is None:
        return {}
    try:
        return {r.name: r.duration_s for r in rules() if r.kind == "alerting"}
    except StackError:
        return {}
