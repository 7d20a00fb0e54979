"""Alert checks: a named alert reaches *firing* and its notification reaches the collector.

With ``absent`` the same alert must *not* fire in the window (a false-positive
check). Labels match when every given label is equal on the alert.

Example::

    AlertCheck("DatabaseLatencyHigh", {"component": "database"}, notification=True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from paychaos.contracts.errors import StackError
from paychaos.contracts.expectations import CheckContext, CheckMode, Observation, Window
from paychaos.contracts.signals import AlertQuery


class AlertCheck:
    """Prometheus reports the alert firing; with ``notification`` the webhook arrived too."""

    needs: ClassVar[tuple[str, ...]] = ("alerts",)
    """The capabilities this expectation type always reads."""

    def __init__(
        self,
        alert: str,
        labels: Mapping[str, str] | None = None,
        *,
        notification: bool = True,
        absent: bool = False,
    ) -> None:
        self.alert, self.labels = alert, dict(labels or {})
        self.notification = notification and not absent
        self.mode: CheckMode = "never" if absent else "eventually"
        shown = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        target = f"{alert}{{{shown}}}" if shown else alert
        self.requires = [*self.needs, *(["notifications"] if notification and not absent else [])]
        self.description = (f"{target} must not fire" if absent else f"{target} fires") + (
            " and is notified" if self.notification else ""
        )
        self._firing_at: float | None = None
        self._active_at: float | None = None

    def _matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.labels.items())

    def observe(self, ctx: CheckContext, window: Window) -> Observation:
        try:
            firing = [
                a
                for a in ctx.metrics.alerts()
                if a.name == self.alert and a.firing and self._matches(a.labels)
            ]
        except StackError as exc:
            return Observation(False, f"cannot read alerts: {exc}")
        if firing and self._firing_at is None:
            self._firing_at = ctx.clock()
            starts = [a.active_at.timestamp() for a in firing if a.active_at is not None]
            self._active_at = min(starts) if starts else None
        if self._firing_at is None:
            return Observation(False, f"{self.alert} not firing")
        labels = dict(firing[0].labels) if firing else {}
        fired = {"fired": self._firing_at}
        if self._active_at is not None:  # Prometheus's activeAt: pending (or firing) since
            fired["active"] = self._active_at
        if not self.notification:
            return Observation(True, f"firing {labels}", self._firing_at, fired)
        try:
            notes = ctx.notifications.find_alert_notifications(
                AlertQuery(
                    alertname=self.alert,
                    status="firing",
                    labels=self.labels,
                    since_unix_s=window.since_unix_s,
                    limit=10,
                )
            )
        except StackError as exc:
            return Observation(
                False, f"firing, but the collector cannot be read: {exc}", None, fired
            )
        if not notes:
            return Observation(
                False, "firing in Prometheus, no notification at the collector yet", None, fired
            )
        received_s = min(n.received_unix_ns for n in notes) / 1e9
        return Observation(
            True,
            f"firing {labels}; notified via {notes[0].receiver or 'webhook'}",
            max(received_s, self._firing_at),
            {**fired, "notified": max(received_s, self._firing_at)},
        )
