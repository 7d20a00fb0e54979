"""Prometheus metrics of the fault proxy, computed from its state at scrape time.

The data path only adds to plain integers; :func:`render_metrics` turns them
into the Prometheus text exposition format (written here: four families do not
need ``prometheus_client``, whose import alone cost the proxy ~1.5 MiB):

- ``chaos_fault_active{fault,target}``: 1 while a toxic of type ``fault`` is
  on proxy ``target`` (``proxy/<name>``), 0 once the last one is gone (the
  MELT *event*);
- ``proxy_connections_total{proxy}``, ``proxy_active_connections{proxy}``;
- ``proxy_bytes_total{proxy,direction}`` (direction: upstream | downstream).

>>> render_family("up", "gauge", "Up.", [({"job": 'a"b'}, 1)])
'# HELP up Up.\\n# TYPE up gauge\\nup{job="a\\\\"b"} 1.0\\n'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paychaos.chaos.proxy.collection import ProxyCollection

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[Mapping[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> str:
    """One metric family in the text format; label names sorted, values as floats."""
    lines = [f"# HELP {name} {_escape(help_text)}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        pairs = ",".join(f'{key}="{_escape(labels[key])}"' for key in sorted(labels))
        lines.append(f"{name}{{{pairs}}} {float(value)!r}" if pairs else f"{name} {float(value)!r}")
    return "\n".join(lines) + "\n"


def render_metrics(collection: ProxyCollection) -> str:
    """The proxy's metrics as Prometheus text."""
    proxies = list(collection.proxies.values())
    active = {
        (toxic.spec.type, f"proxy/{proxy.name}")
        for proxy in proxies
        for toxic in proxy.toxics.values()
    }
    faults = sorted(collection.events.faults_seen | active)
    return "".join(
        [
            render_family(
                "chaos_fault_active",
                "gauge",
                "1 while a fault of this type is injected into the target",
                [
                    ({"fault": fault, "target": target}, 1.0 if (fault, target) in active else 0.0)
                    for fault, target in faults
                ],
            ),
            render_family(
                "proxy_connections_total",
                "counter",
                "Connections accepted by the proxy",
                [({"proxy": p.name}, p.connections_total) for p in proxies],
            ),
            render_family(
                "proxy_active_connections",
                "gauge",
                "Connections open through the proxy",
                [({"proxy": p.name}, len(p.connections)) for p in proxies],
            ),
            render_family(
                "proxy_bytes_total",
                "counter",
                "Bytes read by the proxy",
                [
                    ({"proxy": p.name, "direction": direction}, count)
                    for p in proxies
                    for direction, count in p.bytes_by_stream.items()
                ],
            ),
        ]
    )
