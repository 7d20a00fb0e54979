"""Prometheus metrics of the fault proxy, computed from its state at scrape time.

The data path only adds to plain integers; this collector turns them into:

- ``chaos_fault_active{fault,target}``: 1 while a toxic of type ``fault`` is
  on proxy ``target`` (``proxy/<name>``), 0 once the last one is gone (the
  MELT *event*);
- ``proxy_connections_total{proxy}``, ``proxy_active_connections{proxy}``;
- ``proxy_bytes_total{proxy,direction}`` (direction: upstream | downstream).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from paychaos.chaos.proxy.collection import ProxyCollection


class ProxyCollector(Collector):
    """A ``prometheus_client`` collector reading a :class:`ProxyCollection`."""

    def __init__(self, collection: ProxyCollection) -> None:
        self._collection = collection

    def collect(self) -> Iterator[Metric]:
        proxies = list(self._collection.proxies.values())
        active = {
            (toxic.spec.type, f"proxy/{proxy.name}")
            for proxy in proxies
            for toxic in proxy.toxics.values()
        }
        fault = GaugeMetricFamily(
            "chaos_fault_active",
            "1 while a fault of this type is injected into the target",
            labels=["fault", "target"],
        )
        for key in sorted(self._collection.events.faults_seen | active):
            fault.add_metric(list(key), 1.0 if key in active else 0.0)
        yield fault

        connections = CounterMetricFamily(
            "proxy_connections", "Connections accepted by the proxy", labels=["proxy"]
        )
        active_conns = GaugeMetricFamily(
            "proxy_active_connections", "Connections open through the proxy", labels=["proxy"]
        )
        transferred = CounterMetricFamily(
            "proxy_bytes", "Bytes read by the proxy", labels=["proxy", "direction"]
        )
        for proxy in proxies:
            connections.add_metric([proxy.name], proxy.connections_total)
            active_conns.add_metric([proxy.name], len(proxy.connections))
            for direction, count in proxy.bytes_by_stream.items():
                transferred.add_metric([proxy.name, direction], count)
        yield connections
        yield active_conns
        yield transferred


def make_registry(collection: ProxyCollection) -> CollectorRegistry:
    """A fresh registry holding only the proxy's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProxyCollector(collection))
    return registry
