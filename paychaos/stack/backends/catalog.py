"""The scenario runner's fault catalog for a Docker stack.

The same chaos registry as the embedded stack (network faults through the
fault proxy's Toxiproxy API and gateway faults through its admin API answer on
loopback either way), with the process faults swapped for their container
versions (:mod:`paychaos.chaos.docker_faults`): a scenario's ``kill``, ``pause`` and
``restart`` act on the component's container, and the ``docker-*`` faults
(memory limit, memory hog in the container's cgroup) are available by name.

Example::

    catalog = DockerFaultCatalog()
    prepared = catalog.validate("pause", {"component": "gateway"}, duration_s=20)
    fault = catalog.build(prepared, env)
    fault.inject(); ...; fault.revert()
"""

from __future__ import annotations

from paychaos.chaos import docker_faults
from paychaos.chaos.base import Fault
from paychaos.chaos.controller import ChaosController
from paychaos.chaos.registry import FaultRegistry, default_registry
from paychaos.runner.faults import Fault as RunnerFault
from paychaos.runner.faults import FaultEnv, PreparedFault, RegistryFaultCatalog

#: Scenario names of the embedded stack's process faults → their container versions.
ALIASES: dict[str, type[Fault]] = {
    "kill": docker_faults.DockerKill,
    "pause": docker_faults.DockerPause,
    "restart": docker_faults.DockerRestart,
}


def _alias(name: str, cls: type[Fault]) -> type[Fault]:
    return type(f"{cls.__name__}As{name.title()}", (cls,), {"name": name})


def docker_registry() -> FaultRegistry:
    """The default registry with container faults instead of process signals."""
    registry = FaultRegistry()
    for fault in default_registry():
        if fault.name not in ALIASES:
            registry.register(fault)
    for name, cls in ALIASES.items():
        registry.register(_alias(name, cls))
    for cls in docker_faults.FAULTS:
        registry.register(cls)
    return registry


class DockerFaultCatalog(RegistryFaultCatalog):
    """:class:`RegistryFaultCatalog` on :func:`docker_registry`."""

    def __init__(self, registry: FaultRegistry | None = None) -> None:
        self._registry = registry or docker_registry()

    def build(self, prepared: PreparedFault, env: FaultEnv) -> RunnerFault:
        # the controller rebuilds faults from its journal by name: it needs this registry
        if not env.controllers:
            env.controllers.append(ChaosController(env.target(), registry=self._registry))
        return super().build(prepared, env)


__all__ = ["ALIASES", "DockerFaultCatalog", "docker_registry"]
