"""The built-in stacks' topology, declared once: what a running built-in stack is as a target.

The embedded stack (local processes) and the Docker stack (containers) run the
same components with the same wiring: the payment API behind nothing, the
database and the gateway each behind a proxy of the fault proxy
(:data:`PROXIES`), every signal read from the collector, Prometheus and
Alertmanager. They differ only in how a component is acted on (a process or a
container), which the caller passes as the actuator.

Example::

    target = builtin_target("embedded", urls, token_file=..., scrape_interval_s=5,
                            tracing=True, state_dir=path, processes=Processes(...))
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from paychaos.contracts.domain import Dependency
from paychaos.contracts.target import (
    Actuators,
    AdminApi,
    Checkout,
    Docker,
    Processes,
    SecretRef,
    Signals,
    SignalStore,
    Target,
    Timing,
    Toxiproxy,
)

if TYPE_CHECKING:
    from paychaos.stack.embedded import StackPorts

#: Which proxy of the fault proxy stands in front of which dependency.
PROXIES: Mapping[Dependency, str] = {"database": "postgres", "gateway": "gateway"}
DESCRIPTIONS = {
    "embedded": "paychaos' embedded stack (local processes)",
    "docker": "paychaos' Docker stack (containers)",
}
#: What the payment API is, when it is not paychaos' own Python API.
APP_DESCRIPTIONS = {"nestjs": "with the seed's NestJS payment service"}


def proxy_config(ports: StackPorts) -> list[dict[str, Any]]:
    """The fault proxy's ``proxies.json``: one proxy per dependency, as :data:`PROXIES` names."""
    return [
        {
            "name": PROXIES["database"],
            "listen": f"127.0.0.1:{ports.proxy_postgres}",
            "upstream": f"127.0.0.1:{ports.postgres}",
            "enabled": True,
        },
        {
            "name": PROXIES["gateway"],
            "listen": f"127.0.0.1:{ports.proxy_gateway}",
            "upstream": f"127.0.0.1:{ports.gateway}",
            "enabled": True,
        },
    ]


def builtin_target(
    kind: Literal["embedded", "docker"],
    urls: Mapping[str, str],
    *,
    token_file: Path,
    scrape_interval_s: float,
    group_wait_s: float,
    tracing: bool,
    state_dir: Path,
    processes: Processes | None = None,
    docker: Docker | None = None,
    cgroup: Path | None = None,
    app: str = "python",
) -> Target:
    """The target of a built-in stack whose components answer at ``urls``.

    ``app`` is the payment API that runs: only paychaos' own (``python``) has the
    memory-leak admin hook (``api.leak``); the NestJS service offers no such hook.
    """
    description = DESCRIPTIONS[kind]
    if app in APP_DESCRIPTIONS:
        description += f", {APP_DESCRIPTIONS[app]}"
    token = SecretRef(file=token_file)
    collector = SignalStore(kind="collector", url=urls["collector"])
    return Target(
        name=kind,
        kind=kind,
        description=description,
        checkout=Checkout(url=urls["api"]),
        signals=Signals(
            prometheus=urls.get("prometheus"),
            alertmanager=urls.get("alertmanager"),
            traces=collector,
            logs=collector,
            rum=collector,
            notifications=collector,
        ),
        actuators=Actuators(
            toxiproxy=Toxiproxy(url=urls["proxy"], proxies=PROXIES) if "proxy" in urls else None,
            gateway_admin=AdminApi(url=urls["gateway"], token=token),
            api_admin=AdminApi(url=urls["api"], token=token) if app == "python" else None,
            processes=processes,
            docker=docker,
            cgroup=cgroup,
            memory_hog=True,
        ),
        timing=Timing(
            scrape_interval_s=scrape_interval_s,
            evaluation_interval_s=scrape_interval_s,
            group_wait_s=group_wait_s,
        ),
        tracing=tracing,
        state_dir=state_dir,
    )


__all__ = ["PROXIES", "builtin_target", "proxy_config"]
