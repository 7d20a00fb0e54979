"""Prometheus metrics of the gateway, on a registry the caller owns.

Example::

    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    metrics.charge("visa", "succeeded", 0.061)
    generate_latest(registry)
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from .behaviours import FAULTS
from .profiles import METHODS

OUTCOMES: tuple[str, ...] = ("succeeded", "declined", "error", "timeout", "replayed", "rejected")
DURATION_BUCKETS_S: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.4,
    0.6,
    1.0,
    1.5,
    2.5,
    4.0,
    6.0,
    10.0,
)


class GatewayMetrics:
    """The gateway's RED metrics and the ``chaos_fault_active`` event gauge.

    Labelled children are created once up front, so recording a charge is two
    dict lookups and two lock-protected adds.
    """

    def __init__(self, registry: CollectorRegistry, *, process_metrics: bool = True) -> None:
        self.registry = registry
        if process_metrics:
            ProcessCollector(registry=registry)
        self.charges_total = Counter(
            "gateway_charges_total",
            "Charge requests handled by the gateway simulator, by method and outcome.",
            ["method", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "gateway_charge_duration_seconds",
            "Time the gateway took to answer a charge request, by method.",
            ["method"],
            buckets=DURATION_BUCKETS_S,
            registry=registry,
        )
        self.fault_active = Gauge(
            "chaos_fault_active",
            "1 while an injected fault is active on the target, 0 after it ends.",
            ["fault", "target"],
            registry=registry,
        )
        self.behaviours_active = Gauge(
            "gateway_behaviours_active",
            "Admin behaviours currently in force.",
            registry=registry,
        )
        self.ledger_charges = Gauge(
            "gateway_ledger_charges",
            "Charges held in the gateway ledger (succeeded and declined).",
            registry=registry,
        )
        self._counters: dict[tuple[str, str], Counter] = {
            (m, o): self.charges_total.labels(m, o) for m in METHODS for o in OUTCOMES
        }
        self._durations: dict[str, Histogram] = {m: self.duration.labels(m) for m in METHODS}
        for fault in FAULTS:
            for method in (*METHODS, "*"):
                # Pre-create at 0 so "absent" and "off" look the same to a query.
                self.fault_active.labels(fault, f"gateway/{method}").set(0)

    def charge(self, method: str, outcome: str, duration_s: float | None) -> None:
        """Count one charge request; ``duration_s`` None skips the histogram."""
        self._counters[(method, outcome)].inc()
        if duration_s is not None:
            self._durations[method].observe(duration_s)

    def set_fault(self, fault: str, target: str, value: float) -> None:
        self.fault_active.labels(fault, target).set(value)
