"""The payment API's Prometheus metrics: the seed's business counter, RED and dependencies.

Names and labels are a contract shared with the alert rules in
``stack/prometheus/rules/`` and the seed's queries; change them together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from paychaos.contracts.domain import METHODS

PAYMENT_STATUSES = ("success", "declined", "error")
LATENCY_BUCKETS_S = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    10.0,
)
_DB_BUCKETS_S = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.2,
    0.3,
    0.5,
    1.0,
    2.0,
    5.0,
)


@dataclass(frozen=True)
class ApiMetrics:
    """Every metric the API exports, registered on one registry."""

    registry: CollectorRegistry
    payments: Counter
    requests: Counter
    request_duration: Histogram
    checkout_duration: Histogram
    gateway_duration: Histogram
    gateway_timeouts: Counter
    db_duration: Histogram
    db_errors: Counter
    in_flight: Gauge
    reconciled: Counter
    build_info: Gauge


GATEWAY_OUTCOMES = ("success", "declined", "timeout", "error")
"""The ``outcome`` label of the gateway histogram (``gateway_client.Outcome``)."""


def create_metrics(registry: CollectorRegistry | None = None) -> ApiMetrics:
    """Register the API's metrics on ``registry`` (a fresh one by default).

    Every ``shop_payments_total{method,status}`` series starts at 0 so that
    ``increase()`` and ``bottomk`` see a method even before its first payment; so does
    every ``shop_gateway_request_duration_seconds{method,outcome}``: a series born with
    the first gateway error hides that error from ``rate()``/``increase()`` (they need
    two samples), which delayed GatewayErrorRatioHigh and let a gateway crash's errors
    go unseen by a metric expectation.
    """
    reg = registry if registry is not None else CollectorRegistry()
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)
    payments = Counter(
        "shop_payments_total",
        "Payments processed, by payment method and outcome (the seed's business metric)",
        ["method", "status"],
        registry=reg,
    )
    gateway_timeouts = Counter(
        "shop_gateway_timeouts_total",
        "Gateway calls that timed out, by payment method",
        ["method"],
        registry=reg,
    )
    gateway_duration = Histogram(
        "shop_gateway_request_duration_seconds",
        "Duration of calls to the payment gateway, by payment method and outcome",
        ["method", "outcome"],
        buckets=LATENCY_BUCKETS_S,
        registry=reg,
    )
    for method in METHODS:
        gateway_timeouts.labels(method)
        for status in PAYMENT_STATUSES:
            payments.labels(method, status)
        for outcome in GATEWAY_OUTCOMES:
            gateway_duration.labels(method, outcome)
    return ApiMetrics(
        registry=reg,
        payments=payments,
        requests=Counter(
            "http_server_requests_total",
            "HTTP requests served (RED: rate and errors)",
            ["route", "http_method", "code"],
            registry=reg,
        ),
        request_duration=Histogram(
            "http_server_request_duration_seconds",
            "HTTP request duration (RED: duration)",
            ["route", "http_method", "code"],
            buckets=LATENCY_BUCKETS_S,
            registry=reg,
        ),
        checkout_duration=Histogram(
            "shop_checkout_duration_seconds",
            "End-to-end checkout duration inside the API, by payment method and outcome",
            ["method", "status"],
            buckets=LATENCY_BUCKETS_S,
            registry=reg,
        ),
        gateway_duration=gateway_duration,
        gateway_timeouts=gateway_timeouts,
        db_duration=Histogram(
            "shop_db_operation_duration_seconds",
            "Duration of database operations",
            ["operation"],
            buckets=_DB_BUCKETS_S,
            registry=reg,
        ),
        db_errors=Counter(
            "shop_db_errors_total",
            "Database operations that failed",
            ["operation"],
            registry=reg,
        ),
        in_flight=Gauge(
            "shop_payments_in_flight", "Checkouts being processed right now", registry=reg
        ),
        reconciled=Counter(
            "shop_payments_reconciled_total",
            "Payments left unknown by a gateway failure and settled later from the gateway ledger",
            ["method", "result"],
            registry=reg,
        ),
        build_info=Gauge(
            "shop_build_info",
            "1 for the version this process runs (a deployment shows as a new version)",
            ["version"],
            registry=reg,
        ),
    )


class _NoMetric:
    """A metric that records nothing (``labels`` returns itself; every update is a no-op)."""

    def labels(self, *_: Any, **__: Any) -> _NoMetric:
        return self

    def inc(self, *_: Any, **__: Any) -> None:
        return None

    dec = observe = set = inc


def create_noop_metrics() -> ApiMetrics:
    """Metrics off (the telemetry-off benchmark mode): every update is a no-op and the
    registry is empty, so ``/metrics`` answers an empty exposition, not stale numbers."""
    nothing = cast(Any, _NoMetric())
    return ApiMetrics(
        registry=CollectorRegistry(),
        payments=nothing,
        requests=nothing,
        request_duration=nothing,
        checkout_duration=nothing,
        gateway_duration=nothing,
        gateway_timeouts=nothing,
        db_duration=nothing,
        db_errors=nothing,
        in_flight=nothing,
        reconciled=nothing,
        build_info=nothing,
    )
