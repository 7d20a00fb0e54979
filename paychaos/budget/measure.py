"""Measure what a running target's traffic produces, over one time window.

From Prometheus: the active series (``count by (__name__, job)`` of every series,
checked against Prometheus' own ``prometheus_tsdb_head_series``), which metric
and which label dominate (the TSDB status API and the label names of the top
metrics), the samples appended per second, and the checkouts of the window
(the growth of ``shop_payments_total`` between the window's ends). From the
paychaos collector: the items and bytes of logs, spans and frontend (RUM)
events stored in the same window (``/api/volume``). A target whose traces or logs live in Tempo or Loki
has those volumes reported as not measured, with the reason.

The window ends ``settle_s`` before now, so that the last scrape and the last
telemetry batches of the window have arrived at both ends.

Example::

    sources = sources_of(target)
    m = measure(sources, window_s=600)
    m.series_total, m.checkouts, m.volumes["logs"].bytes
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from paychaos.contracts.errors import PaychaosError, StackError, Unsupported
from paychaos.contracts.target import Target
from paychaos.stack.collector.client import CollectorClient
from paychaos.stack.collector.store import SignalVolume
from paychaos.stack.monitoring.promapi import PrometheusClient

CHECKOUTS_METRIC = "shop_payments_total"
#: Jobs that do not go to the SaaS in layout C: Grafana Cloud runs its own Prometheus and
#: Alertmanager, the gateway simulator stands for the payment processors, the fault
#: proxy is a test tool.
NOT_SHIPPED = ("prometheus", "alertmanager", "gateway", "fault-proxy")
TOP_METRICS = 5
#: The collector's tables, by the signal name the budget uses.
SIGNALS = {"logs": "logs", "traces": "spans", "rum": "rum"}


@dataclass(frozen=True)
class Sources:
    """Where the budget reads: Prometheus, and a collector per signal (or why not)."""

    prometheus: str | None
    collectors: Mapping[str, str] = field(default_factory=dict)
    """signal (logs, traces, rum) -> collector URL."""
    unavailable: Mapping[str, str] = field(default_factory=dict)
    """signal -> why its volume cannot be measured."""
    name: str = "target"


def sources_of(target: Target) -> Sources:
    """The budget's sources in a target: its Prometheus and its paychaos collector."""
    collectors: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    for signal in SIGNALS:
        store = getattr(target.signals, signal)
        if store is None:
            unavailable[signal] = f"the target names no {signal} store"
        elif store.kind != "collector":
            unavailable[signal] = (
                f"read from {store.kind} at {store.url}: volumes are measured only in the "
                "paychaos collector"
            )
        else:
            collectors[signal] = store.url
    return Sources(target.signals.prometheus, collectors, unavailable, target.name)


@dataclass(frozen=True)
class MetricShare:
    """One metric's series, and its label with the most distinct values."""

    name: str
    series: int
    top_label: str | None = None
    top_label_values: int = 0


@dataclass
class Measurement:
    """What the target produced in ``[until - window_s, until)``."""

    target: str
    window_s: float
    until_unix_s: float
    checkouts: float
    series_total: int
    head_series: int | None
    series_by_job: dict[str, int]
    series_by_metric: dict[str, int]
    shipped_by_metric: dict[str, int]
    """Series per metric in the jobs that are shipped."""
    top_metrics: list[MetricShare]
    top_labels: list[tuple[str, int]]
    """Labels with the most distinct values in the head (TSDB status; ``__name__`` left out)."""
    samples_per_s: float
    """``rate(prometheus_tsdb_head_samples_appended_total[1m])`` at the window's end."""
    samples_in_window: float
    scrape_interval_s: float | None
    not_shipped: tuple[str, ...]
    volumes: dict[str, SignalVolume | None]
    unmeasured: dict[str, str]
    notes: list[str] = field(default_factory=list)

    @property
    def shipped_series(self) -> int:
        return sum(n for job, n in self.series_by_job.items() if job not in self.not_shipped)

    @property
    def dpm_per_series(self) -> float:
        return self.samples_per_s * 60 / self.series_total if self.series_total else 0.0

    def per_checkout(self, signal: str) -> float | None:
        """Bytes per checkout of ``signal`` (None: not measured or no checkouts)."""
        volume = self.volumes.get(signal)
        if volume is None or self.checkouts <= 0:
            return None
        return volume.bytes / self.checkouts

    @property
    def head_agreement(self) -> float | None:
        """``series_total / head_series - 1`` (None without Prometheus' own count)."""
        if not self.head_series:
            return None
        return self.series_total / self.head_series - 1


def _scalar(prom: PrometheusClient, expr: str, at: float) -> float | None:
    samples = prom.query(expr, at=at)
    return sum(s.value for s in samples) if samples else None


def _counter_delta(prom: PrometheusClient, metric: str, since: float, until: float) -> float:
    """How much a counter grew between ``since`` and ``until``, summed over its series.

    The difference of the values at both ends, per series (``increase()`` would
    extrapolate the window's edges: +4 % on a 2-minute window scraped every 5 s); a
    series that restarted counts from its restart, one absent at ``since`` from 0.
    """
    before = {frozenset(s.labels.items()): s.value for s in prom.query(metric, at=since)}
    total = 0.0
    for sample in prom.query(metric, at=until):
        start = before.get(frozenset(sample.labels.items()), 0.0)
        total += sample.value - start if sample.value >= start else sample.value
    return total


def _metric_shares(
    prom: PrometheusClient, by_metric: Mapping[str, int], start: float, end: float
) -> list[MetricShare]:
    shares = []
    top = sorted(by_metric.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_METRICS]
    for name, count in top:
        best: tuple[str | None, int] = (None, 0)
        selector = f'{{__name__="{name}"}}'
        for label in prom.label_names(selector, start, end):
            if label == "__name__":
                continue
            values = _scalar(prom, f"count(count by ({label}) ({selector}))", end)
            if values is not None and int(values) > best[1]:
                best = (label, int(values))
        shares.append(MetricShare(name, count, *best))
    return shares


def measure(
    sources: Sources,
    *,
    window_s: float = 600.0,
    settle_s: float = 10.0,
    not_shipped: tuple[str, ...] = NOT_SHIPPED,
    clock: Callable[[], float] = time.time,
    timeout_s: float = 10.0,
) -> Measurement:
    """Measure ``sources`` over the window ending ``settle_s`` ago.

    Raises :class:`Unsupported` when there is no Prometheus to read, and
    :class:`StackError` when it cannot be read.
    """
    if sources.prometheus is None:
        raise Unsupported(
            f"target {sources.name} names no Prometheus (signals.prometheus): series, samples "
            "and checkouts cannot be measured"
        )
    if window_s <= 0 or settle_s < 0:
        raise ValueError("window_s must be positive and settle_s not negative")
    prom = PrometheusClient(sources.prometheus, timeout_s=timeout_s)
    until = clock() - settle_s
    since = until - window_s
    window = f"{round(window_s * 1000)}ms"
    notes: list[str] = []

    checkouts = _counter_delta(prom, CHECKOUTS_METRIC, since, until)
    by_job: dict[str, int] = {}
    by_metric: dict[str, int] = {}
    shipped_by_metric: dict[str, int] = {}
    for sample in prom.query('count by (__name__, job) ({__name__=~".+"})', at=until):
        job = sample.labels.get("job", "(no job)")
        name = sample.labels.get("__name__", "")
        by_job[job] = by_job.get(job, 0) + int(sample.value)
        by_metric[name] = by_metric.get(name, 0) + int(sample.value)
        if job not in not_shipped:
            shipped_by_metric[name] = shipped_by_metric.get(name, 0) + int(sample.value)
    head = _scalar(prom, "prometheus_tsdb_head_series", until)
    samples_per_s = _scalar(
        prom, "sum(rate(prometheus_tsdb_head_samples_appended_total[1m]))", until
    )
    appended = _scalar(
        prom, f"sum(increase(prometheus_tsdb_head_samples_appended_total[{window}]))", until
    )
    interval = _scalar(
        prom, 'avg(prometheus_target_interval_length_seconds{quantile="0.5"})', until
    )
    top_labels: list[tuple[str, int]] = []
    try:
        status = prom.tsdb_status()
        top_labels = [
            (str(item["name"]), int(item["value"]))
            for item in status.get("labelValueCountByLabelName", [])
            if item.get("name") != "__name__"
        ]
    except (PaychaosError, KeyError, TypeError, ValueError) as exc:
        notes.append(f"the TSDB status API did not answer ({exc}); top labels not shown")
    shares = _metric_shares(prom, by_metric, since, until) if by_metric else []

    volumes: dict[str, SignalVolume | None] = {}
    unmeasured = dict(sources.unavailable)
    answers: dict[str, dict[str, SignalVolume]] = {}
    for signal, table in SIGNALS.items():
        url = sources.collectors.get(signal)
        if url is None:
            volumes[signal] = None
            continue
        try:
            if url not in answers:
                answers[url] = CollectorClient(url, timeout_s=timeout_s).volume(since, until)
            volumes[signal] = answers[url][table]
        except (StackError, KeyError) as exc:
            volumes[signal] = None
            unmeasured[signal] = f"the collector at {url} did not answer: {exc}"
    return Measurement(
        target=sources.name,
        window_s=window_s,
        until_unix_s=until,
        checkouts=checkouts,
        series_total=sum(by_job.values()),
        head_series=int(head) if head is not None else None,
        series_by_job=dict(sorted(by_job.items(), key=lambda kv: (-kv[1], kv[0]))),
        series_by_metric=by_metric,
        shipped_by_metric=shipped_by_metric,
        top_metrics=shares,
        top_labels=top_labels,
        samples_per_s=samples_per_s or 0.0,
        samples_in_window=appended or 0.0,
        scrape_interval_s=interval,
        not_shipped=not_shipped,
        volumes=volumes,
        unmeasured=unmeasured,
        notes=notes,
    )


__all__ = [
    "CHECKOUTS_METRIC",
    "NOT_SHIPPED",
    "Measurement",
    "MetricShare",
    "Sources",
    "measure",
    "sources_of",
]
