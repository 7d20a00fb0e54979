"""The OpenTelemetry SDK's own metrics, on a service's Prometheus ``/metrics``.

Who watches the watchers: when the collector (Alloy, or the embedded stand-in)
hangs or dies, the services' spans and log records are lost and no trace or log
query can say so, since the store that would answer is the one down. The SDK
counts what it could not deliver (semantic conventions, ``otel.sdk.*``):

- ``otel.sdk.exporter.span.exported`` / ``...log.exported``: items handed to the
  OTLP exporter, with ``error.type`` on those it failed to send;
- ``otel.sdk.processor.span.processed`` / ``...log.processed``: with
  ``error.type="queue_full"`` on items the batch processor dropped;
- ``otel.sdk.processor.*.queue.size`` / ``.queue.capacity``.

They are recorded only when ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true``
(read by the SDK itself) and only into the ``MeterProvider`` handed to the
exporters and processors. :class:`SdkMetricsCollector` holds that provider with an
in-memory reader and, on every scrape, turns what it reads into Prometheus
families with the usual OpenTelemetry-to-Prometheus names (dots to underscores,
``_total`` on counters): ``otel_sdk_exporter_span_exported_total{error_type=…}``.

Example::

    sdk = SdkMetricsCollector()
    setup_telemetry(settings, meter_provider=sdk.meter_provider)
    registry.register(sdk)       # the API's CollectorRegistry
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

#: OpenTelemetry's switch for the SDK's own metrics (the SDK reads it from the environment).
OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED = "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def prometheus_name(name: str) -> str:
    """``otel.sdk.exporter.span.exported`` → ``otel_sdk_exporter_span_exported``."""
    return _INVALID.sub("_", name)


class SdkMetricsCollector(Collector):
    """A prometheus_client collector reading the SDK's self-metrics (counters and gauges;
    histograms such as ``otel.sdk.exporter.operation.duration`` are left out)."""

    def __init__(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        self._reader: InMemoryMetricReader = InMemoryMetricReader()
        self.meter_provider: MeterProvider = MeterProvider(metric_readers=[self._reader])

    def collect(self) -> Iterator[Metric]:
        from opentelemetry.sdk.metrics.export import Gauge, Sum

        data = self._reader.get_metrics_data()
        if data is None:
            return
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    points = metric.data
                    if not isinstance(points, Sum | Gauge):
                        continue
                    name = prometheus_name(metric.name)
                    rows = [
                        ({prometheus_name(k): str(v) for k, v in (p.attributes or {}).items()}, p)
                        for p in points.data_points
                    ]
                    keys = sorted({k for attrs, _p in rows for k in attrs})
                    doc = metric.description or ""
                    family: CounterMetricFamily | GaugeMetricFamily
                    if isinstance(points, Sum) and points.is_monotonic:
                        family = CounterMetricFamily(name, doc, labels=keys)
                    else:
                        family = GaugeMetricFamily(name, doc, labels=keys)
                    for attrs, point in rows:
                        family.add_metric([attrs.get(k, "") for k in keys], float(point.value))
                    yield family

    def shutdown(self) -> None:
        self.meter_provider.shutdown()


__all__ = ["OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "SdkMetricsCollector", "prometheus_name"]
