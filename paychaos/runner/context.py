"""What a run reads through: the checks' context, the default traffic, the rules' ``for``.

Everything comes from the run's :class:`~paychaos.targets.resolve.TargetSession`:
the checkout URL, the target's Prometheus, its trace/log/RUM/notification
stores, the gateway's ledger where the target has one.

Example::

    ctx = make_context(session, driver)
    ctx.metrics.query("up")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from paychaos.contracts.errors import StackError
from paychaos.contracts.expectations import CheckContext
from paychaos.contracts.metrics import MetricsSource
from paychaos.contracts.scenario import Scenario
from paychaos.contracts.signals import AlertNotificationSource, LogSource, RumSource, TraceSource
from paychaos.contracts.target import Target
from paychaos.runner.observe import CachedMetrics, NoMetrics
from paychaos.runner.traffic import AsyncTrafficDriver, TrafficDriver
from paychaos.stack.backends.base import sources_for
from paychaos.stack.monitoring.promapi import PrometheusClient
from paychaos.targets.resolve import TargetSession


def rum_url(target: Target) -> str | None:
    """Where the shoppers' browsers push Faro payloads (the collector), if anywhere."""
    store = target.signals.rum
    return store.url if store is not None and store.kind == "collector" else None


def default_traffic(session: TargetSession, scenario: Scenario, ledger_dir: Path) -> TrafficDriver:
    """The in-process driver, its client ledger in ``ledger_dir``."""
    target = session.target
    return AsyncTrafficDriver(
        target.checkout.url,
        rum_url(target),
        ledger_dir=ledger_dir,
        allow_hosts=(*target.allow_hosts, *session.allow_hosts),
        checkout=target.checkout,
    )


def metrics_for(target: Target, *, timeout_s: float = 2.0) -> MetricsSource:
    """The target's Prometheus, or a source that says it has none."""
    prometheus = target.signals.prometheus
    return PrometheusClient(prometheus, timeout_s=timeout_s) if prometheus else NoMetrics()


def make_context(
    session: TargetSession,
    driver: TrafficDriver,
    *,
    metrics: MetricsSource | None = None,
    collector: object | None = None,
    clock: Callable[[], float] = time.time,
) -> CheckContext:
    """The sources checks read: the target's, unless overridden (tests)."""
    target = session.target
    signals = collector or sources_for(target, timeout_s=5.0)
    prom = metrics or metrics_for(target)
    if not (
        isinstance(signals, TraceSource)
        and isinstance(signals, LogSource)
        and isinstance(signals, RumSource)
        and isinstance(signals, AlertNotificationSource)
    ):
        raise TypeError(f"{type(signals).__name__} is not a trace/log/RUM/alert source")
    gateway = target.actuators.gateway_admin
    return CheckContext(
        metrics=CachedMetrics(prom),
        traces=signals,
        logs=signals,
        rum=signals,
        notifications=signals,
        api_url=target.checkout.url,
        gateway_url=gateway.url if gateway else "",
        client_ledger=driver,
        checkout=target.checkout,
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
