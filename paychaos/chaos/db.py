"""Database faults, injected by the fault proxy in the API → PostgreSQL path.

- ``db-latency``: a ``latency`` toxic on the responses from PostgreSQL. With
  ``--share`` below 1 it uses the proxy's ``per_chunk`` toxicity, so that a
  share of *queries* is slow even on the API's few long-lived pooled
  connections (per-connection toxicity would make whole connections slow or
  not at all).
- ``db-outage``: PostgreSQL unreachable. Not done by disabling the proxy —
  ``enabled=false`` has no TTL in the proxy and would outlive a killed
  controller — but with a toxic, whose TTL the proxy holds:
  ``blackhole`` (default) is a ``timeout`` toxic with timeout 0: connections
  stay open and every byte is dropped, as in a network partition or a failover
  in progress (queries hang until the API's timeouts, then 503, and the pool
  drains); ``reset`` is a ``reset_peer`` toxic: every connection is reset at
  once (fast 503s, as when the server process is gone).

The toxics' base (TTL held by the proxy, revert) is :mod:`paychaos.chaos.network`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from paychaos.chaos.base import Applied, Fault, InjectContext
from paychaos.chaos.network import ProxyFault, toxic_name
from paychaos.chaos.params import param
from paychaos.chaos.proxy.client import ProxyClient

DB_PROXY = "postgres"


class _DbFault(ProxyFault):
    """A fault made of toxics on the proxy in front of PostgreSQL."""

    dependency = "database"
    proxy_name = DB_PROXY


@dataclass(frozen=True)
class DbLatencyParams:
    latency_ms: int = param(300, min=1, max=60_000, help="delay added to database responses")
    jitter_ms: int = param(0, min=0, max=60_000, help="± random variation of the delay")
    share: float = param(
        1.0, min=0.01, max=1.0, help="share of queries slowed (per-chunk toxicity below 1)"
    )


class DbLatency(_DbFault):
    name = "db-latency"
    family = "db"
    description = "Slow PostgreSQL: delay database responses (all, or a share of queries)."
    params_cls = DbLatencyParams
    metric_fault = "latency"

    def validate(self) -> None:
        p: DbLatencyParams = self.params
        self.check_jitter(p.latency_ms, p.jitter_ms)

    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        p: DbLatencyParams = self.params
        self.add_latency(
            ctx, applied, latency_ms=p.latency_ms, jitter_ms=p.jitter_ms, share=p.share
        )


@dataclass(frozen=True)
class DbOutageParams:
    mode: str = param(
        "blackhole",
        choices=("blackhole", "reset"),
        help="blackhole: connections hang (partition); reset: connections reset at once",
    )


class DbOutage(_DbFault):
    name = "db-outage"
    family = "db"
    description = "PostgreSQL unreachable through the proxy (blackhole or reset), with a TTL."
    params_cls = DbOutageParams
    metric_fault = "timeout"

    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        p: DbOutageParams = self.params
        client = ProxyClient(ctx.target.toxiproxy_url())
        proxy = applied["proxy"] = ctx.target.proxy_for(self.dependency)
        applied["toxics"] = []
        kind = "timeout" if p.mode == "blackhole" else "reset_peer"
        # Both directions: new connections get no server greeting, live ones no answers.
        for stream in ("upstream", "downstream"):
            name = toxic_name(ctx.fault_id, stream)
            applied["toxics"].append(name)
            client.add_toxic(
                proxy,
                kind,
                {"timeout": 0},
                stream=stream,
                toxicity=1.0,
                ttl_s=ctx.ttl_s,
                name=name,
            )


FAULTS: tuple[type[Fault], ...] = (DbLatency, DbOutage)
