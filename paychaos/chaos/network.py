"""Network faults on the path to a dependency, made of toxics in the fault proxy.

The fault proxy stands in front of each dependency of the payment API
(:data:`paychaos.stack.topology.PROXIES`: ``postgres``, ``gateway``). A fault
here is one or more toxics on that dependency's proxy, each with the TTL the
proxy itself holds, so it expires even if the controller is killed; revert
removes them (a toxic already expired is fine).

- ``gateway-network-latency``: the network between the payment API and the
  payment gateway is slow: a ``latency`` toxic on the gateway's answers
  (``downstream``). The gateway itself is as fast as ever, so its own server
  span and its processing-time histogram stay fast while the API's client span
  and its gateway-call histogram grow: unlike ``gateway-latency``, slow
  processing *inside* the gateway, where both grow.

The database's faults (:mod:`paychaos.chaos.db`) are built on the same base.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from paychaos.chaos.base import Applied, Fault, InjectContext
from paychaos.chaos.params import param
from paychaos.chaos.proxy.client import ProxyClient, ProxyRequestFailed
from paychaos.chaos.target import FaultTarget
from paychaos.contracts.domain import Dependency
from paychaos.contracts.errors import InvalidFault, RollbackFailed


def toxic_name(fault_id: str, part: str) -> str:
    return f"chaos-{fault_id}-{part}"


def remove_toxics(
    target: FaultTarget, applied: Mapping[str, Any], dependency: Dependency
) -> dict[str, Any]:
    """Remove the toxics ``applied`` records from the proxy in front of ``dependency``."""
    client = ProxyClient(target.toxiproxy_url())
    proxy = str(applied.get("proxy") or target.proxy_for(dependency))
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


class ProxyFault(Fault):
    """A fault made of toxics on the proxy in front of one dependency."""

    dependency: ClassVar[Dependency] = "database"
    proxy_name: ClassVar[str] = "postgres"
    """The proxy's name on the built-in stacks: the ``target`` label the proxy exports."""

    def target_label(self) -> str:
        return f"proxy/{self.proxy_name}"

    def requires(self) -> list[str]:
        return [f"proxy.{self.dependency}"]

    def check(self, target: FaultTarget) -> None:
        target.toxiproxy_url()
        target.proxy_for(self.dependency)

    def revert(self, target: FaultTarget, applied: Mapping[str, Any]) -> dict[str, Any]:
        return remove_toxics(target, applied, self.dependency)

    def check_jitter(self, latency_ms: int, jitter_ms: int) -> None:
        if jitter_ms > latency_ms:
            raise InvalidFault(
                f"{self.name}: parameter jitter_ms (--jitter-ms) must not exceed "
                f"latency_ms ({latency_ms}), got {jitter_ms}"
            )

    def add_latency(
        self,
        ctx: InjectContext,
        applied: Applied,
        *,
        latency_ms: int,
        jitter_ms: int,
        share: float = 1.0,
    ) -> None:
        """One ``latency`` toxic on the dependency's answers (``downstream``)."""
        client = ProxyClient(ctx.target.toxiproxy_url())
        proxy = applied["proxy"] = ctx.target.proxy_for(self.dependency)
        applied["toxics"] = []
        name = toxic_name(ctx.fault_id, "latency")
        applied["toxics"].append(name)  # recorded first: a timeout may still have added it
        client.add_toxic(
            proxy,
            "latency",
            {"latency": latency_ms, "jitter": jitter_ms},
            stream="downstream",
            toxicity=share,
            toxicity_mode="per_chunk" if share < 1 else "per_connection",
            ttl_s=ctx.ttl_s,
            name=name,
        )


@dataclass(frozen=True)
class GatewayNetworkLatencyParams:
    latency_ms: int = param(
        300, min=1, max=60_000, help="delay added to the gateway's answers on the network"
    )
    jitter_ms: int = param(0, min=0, max=60_000, help="± random variation of the delay")


class GatewayNetworkLatency(ProxyFault):
    name = "gateway-network-latency"
    family = "gateway"
    description = (
        "Slow network to the gateway: its answers delayed in the fault proxy "
        "(the gateway itself stays fast)."
    )
    params_cls = GatewayNetworkLatencyParams
    metric_fault = "latency"
    dependency = "gateway"
    proxy_name = "gateway"

    def validate(self) -> None:
        p: GatewayNetworkLatencyParams = self.params
        self.check_jitter(p.latency_ms, p.jitter_ms)

    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        p: GatewayNetworkLatencyParams = self.params
        self.add_latency(ctx, applied, latency_ms=p.latency_ms, jitter_ms=p.jitter_ms)


FAULTS: tuple[type[Fault], ...] = (GatewayNetworkLatency,)
