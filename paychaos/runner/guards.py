"""Stop conditions: a scenario's guards, evaluated at every poll of the run.

- ``error_ratio``: the share of failing checkouts the shoppers themselves saw
  over the traffic driver's recent window (no telemetry needed: it works when
  the telemetry is what broke);
- ``metric``: a PromQL condition on the target's Prometheus;
- ``alert``: an alert firing (with the given labels).

A guard whose source cannot answer (Prometheus down) does not trip: the
error-ratio guard is the one that must hold on every target that is not local.

Example::

    watch = GuardWatch(scenario, metrics, driver)
    watch.tripped()        # None, or ("error ratio > 0.5", "0.81 of 143 checkouts failed")
"""

from __future__ import annotations

from paychaos.contracts.errors import InvalidInput, StackError
from paychaos.contracts.metrics import MetricsSource
from paychaos.contracts.scenario import (
    AlertGuard,
    ErrorRatioGuard,
    MetricGuard,
    Scenario,
    compare,
)
from paychaos.runner.traffic import TrafficDriver


class GuardWatch:
    """Evaluates a scenario's guards; the first that trips is reported."""

    def __init__(self, scenario: Scenario, metrics: MetricsSource, driver: TrafficDriver) -> None:
        self.scenario, self.metrics, self.driver = scenario, metrics, driver

    def tripped(self) -> tuple[str, str] | None:
        """``(guard name, what was seen)`` of the first guard that trips, else ``None``."""
        for index, guard in enumerate(self.scenario.guards):
            detail = self._check(guard)
            if detail is not None:
                return self.scenario.guard_name(index), detail
        return None

    def _check(self, guard: object) -> str | None:
        if isinstance(guard, ErrorRatioGuard):
            stats = self.driver.stats()
            if stats.window_completed >= guard.min_requests and stats.error_ratio > guard.max_ratio:
                return (
                    f"{stats.error_ratio:.2f} of the last {stats.window_completed} checkouts "
                    f"failed (limit {guard.max_ratio:g})"
                )
            return None
        try:
            if isinstance(guard, AlertGuard):
                for alert in self.metrics.alerts():
                    if alert.name != guard.alert or alert.state != "firing":
                        continue
                    if all(alert.labels.get(k) == v for k, v in guard.labels.items()):
                        return f"alert {guard.alert} is firing"
                return None
            assert isinstance(guard, MetricGuard)
            samples = self.metrics.query(guard.query)
        except (StackError, InvalidInput):
            return None  # a blind source does not trip a guard
        for sample in samples:
            if compare(sample.value, guard.op, guard.value):
                labels = ", ".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                return f"{guard.query} = {sample.value:g} for {{{labels}}}"
        return None


__all__ = ["GuardWatch"]
