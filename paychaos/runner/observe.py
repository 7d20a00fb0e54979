"""What the runner reads from Prometheus besides the checks: alert timeline and plot series.

:class:`CachedMetrics` answers each query once per poll cycle (several checks
ask for ``alerts()``; a blind Prometheus then costs one timeout per cycle, not
one per check).
"""

from __future__ import annotations

from paychaos.contracts.errors import InvalidInput, StackError
from paychaos.contracts.metrics import ActiveAlert, MetricsSource, Sample, Series
from paychaos.report.model import AlertEvent, RunRecord, SeriesRecord

#: What the HTML report plots, per payment method (PromQL over a short window).
PLOT_QUERIES: dict[str, str] = {
    "request rate (req/s)": "sum by (method) (rate(shop_payments_total[15s]))",
    "error ratio": (
        'sum by (method) (rate(shop_payments_total{status="error"}[15s]))'
        " / (sum by (method) (rate(shop_payments_total[15s])) > 0)"
    ),
    "checkout p95 latency (s)": (
        "histogram_quantile(0.95, sum by (method, le)"
        " (rate(shop_checkout_duration_seconds_bucket[15s])))"
    ),
}


class NoMetrics:
    """The metrics of a target without Prometheus: every query says so.

    A scenario that needs metrics is refused on such a target before it runs;
    this only keeps the runner's own plots and alert timeline quiet.
    """

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        raise StackError("the target has no Prometheus")

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[Series]:
        raise StackError("the target has no Prometheus")

    def alerts(self) -> list[ActiveAlert]:
        raise StackError("the target has no Prometheus")


class CachedMetrics:
    """A :class:`MetricsSource` that remembers answers (and failures) until :meth:`clear`."""

    def __init__(self, inner: MetricsSource) -> None:
        self.inner = inner
        self._queries: dict[str, list[Sample] | StackError] = {}
        self._alerts: list[ActiveAlert] | StackError | None = None

    def clear(self) -> None:
        self._queries.clear()
        self._alerts = None

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        if at is not None:
            return self.inner.query(expr, at)
        if expr not in self._queries:
            try:
                self._queries[expr] = self.inner.query(expr)
            except StackError as exc:
                self._queries[expr] = exc
        answer = self._queries[expr]
        if isinstance(answer, StackError):
            raise answer
        return answer

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[Series]:
        return self.inner.query_range(expr, start, end, step_s)

    def alerts(self) -> list[ActiveAlert]:
        if self._alerts is None:
            try:
                self._alerts = self.inner.alerts()
            except StackError as exc:
                self._alerts = exc
        if isinstance(self._alerts, StackError):
            raise self._alerts
        return self._alerts


def track_alerts(metrics: MetricsSource, events: list[AlertEvent], now: float) -> None:
    """Extend ``events`` with the alerts firing now (one event per continuous firing)."""
    try:
        firing = [a for a in metrics.alerts() if a.firing]
    except StackError:
        return
    for alert in firing:
        labels = {k: v for k, v in alert.labels.items() if k != "alertname"}
        for event in reversed(events):
            same = event.name == alert.name and event.labels == labels
            if same and now - event.last_unix_s <= 5.0:
                event.last_unix_s = now
                break
        else:
            events.append(AlertEvent(alert.name, labels, now, now))


def collect_series(metrics: MetricsSource, record: RunRecord, scrape_interval_s: float) -> None:
    """Fill ``record.series`` from ``query_range`` over the run (best effort)."""
    start = record.traffic_started_unix_s or record.started_unix_s
    end = max(record.ended_unix_s, start + 1)
    step = max(1.0, scrape_interval_s)
    for title, expr in PLOT_QUERIES.items():
        try:
            series = metrics.query_range(expr, start, end, step)
        except (StackError, InvalidInput):
            continue
        record.series[title] = [
            SeriesRecord(dict(s.labels), [(t, v) for t, v in s.points if v == v]) for s in series
        ]
