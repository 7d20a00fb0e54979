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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paychaos.chaos.base import Applied, Fault, InjectContext
from paychaos.chaos.params import param
from paychaos.chaos.proxy.client import ProxyClient, ProxyRequestFailed
from paychaos.chaos.target import FaultTarget
from paychaos.contracts.domain import Dependency
from paychaos.contracts.errors import RollbackFailed

DB_PROXY = "postgres"


def toxic_name(fault_id: str, part: str) -> str:
    return f"chaos-{fault_id}-{part}"


def _remove_toxics(target: FaultTarget, applied: Mapping[str, Any]) -> dict[str, Any]:
    client = ProxyClient(target.toxiproxy_url())
    proxy = str(applied.get("proxy") or target.proxy_for("database"))
    removed, gone = [], []
    for name in applied.get("toxics", []):
        try:
            client.remove_toxic(proxy, name)
            removed.append(name)
        except ProxyRequestFailed as exc:
            if exc.status == 404:
                gone.append(name)  # expired already, or never made it
            else:
                raise RollbackFailed(f"could not remove toxic {name} from {proxy}: {exc}") from exc
    return {"removed": removed, "already_gone": gone}


class _ProxyFault(Fault):
    """A fault made of toxics on one proxy of the fault proxy."""

    proxy_name: str = DB_PROXY
    dependency: Dependency = "database"

    def target_label(self) -> str:
        return f"proxy/{self.proxy_name}"

    def requires(self) -> list[str]:
        return [f"proxy.{self.dependency}"]

    def check(self, target: FaultTarget) -> None:
        target.toxiproxy_url()
        target.proxy_for(self.dependency)

    def revert(self, target: FaultTarget, applied: Mapping[str, Any]) -> dict[str, Any]:
        return _remove_toxics(target, applied)


@dataclass(frozen=True)
class DbLatencyParams:
    latency_ms: int = param(300, min=1, max=60_000, help="delay added to database responses")
    jitter_ms: int = param(0, min=0, max=60_000, help="± random variation of the delay")
    share: float = param(
        1.0, min=0.01, max=1.0, help="share of queries slowed (per-chunk toxicity below 1)"
    )


class DbLatency(_ProxyFault):
    name = "db-latency"
    family = "db"
    description = "Slow PostgreSQL: delay database responses (all, or a share of queries)."
    params_cls = DbLatencyParams
    metric_fault = "latency"

    def validate(self) -> None:
        from paychaos.contracts.errors import InvalidFault

        p: DbLatencyParams = self.params
        if p.jitter_ms > p.latency_ms:
            raise InvalidFault(
                f"{self.name}: parameter jitter_ms (--jitter-ms) must not exceed "
                f"latency_ms ({p.latency_ms}), got {p.jitter_ms}"
            )

    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        p: DbLatencyParams = self.params
        client = ProxyClient(ctx.target.toxiproxy_url())
        proxy = applied["proxy"] = ctx.target.proxy_for(self.dependency)
        applied["toxics"] = []
        name = toxic_name(ctx.fault_id, "latency")
        applied["toxics"].append(name)  # recorded first: a timeout may still have added it
        client.add_toxic(
            proxy,
            "latency",
            {"latency": p.latency_ms, "jitter": p.jitter_ms},
            stream="downstream",
            toxicity=p.share,
            toxicity_mode="per_chunk" if p.share < 1 else "per_connection",
            ttl_s=ctx.ttl_s,
            name=name,
        )


@dataclass(frozen=True)
class DbOutageParams:
    mode: str = param(
        "blackhole",
        choices=("blackhole", "reset"),
        help="blackhole: connections hang (partition); reset: connections reset at once",
    )


class DbOutage(_ProxyFault):
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
