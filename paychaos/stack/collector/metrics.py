"""The collector's own telemetry and the RUM-derived metrics Prometheus alerts on.

All metrics live in one :class:`~prometheus_client.CollectorRegistry` passed in
(a fresh one by default), so tests can build as many apps as they like.

- ``collector_items_accepted_total{signal}``: spans, logs, rum, alerts stored.
- ``collector_items_rejected_total{signal,reason}``: refused at the door
  (``malformed``, ``unsupported_media_type``, ``too_large``, ``invalid_id``...).
- ``collector_items_dropped_total{signal,reason}``: deleted by retention.
- ``rum_exceptions_total{page,method}``: JS exceptions by page path and payment method.
- ``rum_web_vital_seconds{vital}``: LCP, FCP, TTFB, INP, FID (Faro sends ms; stored in s).
- ``rum_web_vital_cls``: cumulative layout shift (unitless).
- ``rum_payment_button_clicks_total{method}``: Faro events ``click_payment_button``.
- ``alertmanager_notifications_received_total{alertname,status}``: one per alert delivered.

Label values that come from the browser are bounded: past ``max_label_values``
distinct values of a label, new ones are counted as ``other``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Histogram

from paychaos.contracts.signals import AlertNotification, RumItem

TIME_VITALS = ("lcp", "fcp", "ttfb", "inp", "fid")
_VITAL_BUCKETS_S = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.8, 2.5, 3.0, 4.0, 6.0, 10.0, 20.0)
_CLS_BUCKETS = (0.01, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0)
PAYMENT_CLICK_EVENT = "click_payment_button"
UNKNOWN = "unknown"
OTHER = "other"


class _BoundedLabel:
    """Keeps at most ``limit`` distinct values of one label; the rest become ``other``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str | None) -> str:
        value = value or UNKNOWN
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) < self._limit:
                self._seen.add(value)
                return value
        return OTHER


def page_label(url: str | None) -> str:
    """The path of a page URL (``https://shop/checkout?x=1`` -> ``/checkout``)."""
    if not url:
        return UNKNOWN
    return urlsplit(url).path or "/"


class CollectorMetrics:
    """Counters and histograms of one collector process."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, max_label_values: int = 100
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.accepted = Counter(
            "collector_items_accepted", "Items stored, by signal.", ["signal"], registry=r
        )
        self.rejected = Counter(
            "collector_items_rejected",
            "Items or requests refused, by signal and reason.",
            ["signal", "reason"],
            registry=r,
        )
        self.dropped = Counter(
            "collector_items_dropped",
            "Stored items deleted, by signal and reason (retention).",
            ["signal", "reason"],
            registry=r,
        )
        self.rum_exceptions = Counter(
            "rum_exceptions",
            "JavaScript exceptions reported by browsers, by page path and payment method.",
            ["page", "method"],
            registry=r,
        )
        self.web_vital_seconds = Histogram(
            "rum_web_vital_seconds",
            "Web vitals measured in browsers (LCP, FCP, TTFB, INP, FID), in seconds.",
            ["vital"],
            buckets=_VITAL_BUCKETS_S,
            registry=r,
        )
        self.web_vital_cls = Histogram(
            "rum_web_vital_cls",
            "Cumulative layout shift measured in browsers (unitless).",
            buckets=_CLS_BUCKETS,
            registry=r,
        )
        self.payment_clicks = Counter(
            "rum_payment_button_clicks",
            "Clicks on the payment button (Faro event click_payment_button), by method.",
            ["method"],
            registry=r,
        )
        self.alert_notifications = Counter(
            "alertmanager_notifications_received",
            "Alerts delivered by Alertmanager webhooks, by alert name and alert status.",
            ["alertname", "status"],
            registry=r,
        )
        self._page = _BoundedLabel(max_label_values)
        self._method = _BoundedLabel(max_label_values)
        self._alertname = _BoundedLabel(max_label_values)

    def observe_rum(self, items: Iterable[RumItem]) -> None:
        for item in items:
            if item.kind == "exception":
                method = item.attributes.get("method")
                self.rum_exceptions.labels(
                    page=self._page(page_label(item.page_url)),
                    method=self._method(str(method) if method is not None else None),
                ).inc()
            elif item.kind == "event" and item.name == PAYMENT_CLICK_EVENT:
                method = item.attributes.get("method")
                self.payment_clicks.labels(
                    method=self._method(str(method) if method is not None else None)
                ).inc()
            elif item.kind == "measurement" and item.attributes.get("measurement.type") == (
                "web-vitals"
            ):  # one item per vital, named LCP, CLS...; its value under the Faro key
                name = item.name.lower()
                value = next((v for k, v in item.values.items() if k.lower() == name), None)
                if value is None:
                    continue
                if name in TIME_VITALS:
                    self.web_vital_seconds.labels(vital=name).observe(value / 1000.0)
                elif name == "cls":
                    self.web_vital_cls.observe(value)

    def observe_alerts(self, alerts: Iterable[AlertNotification]) -> None:
        for alert in alerts:
            self.alert_notifications.labels(
                alertname=self._alertname(alert.alertname), status=alert.status
            ).inc()
