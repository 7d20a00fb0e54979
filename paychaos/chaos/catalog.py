"""The chaos layer's fault catalog for the scenario runner, on any target.

One catalog of every fault family (``paychaos chaos list`` shows the same).
``kill``, ``pause`` and ``restart`` act on a component's process where the
target has a ``processes`` actuator, and on its container where it has a
``docker`` actuator instead; the ``docker-*`` faults need the container.

Example::

    catalog = RegistryFaultCatalog()
    prepared = catalog.validate("pause", {"component": "gateway"}, duration_s=20)
    catalog.requires(prepared)        # ["process.gateway|container.gateway"]
    fault = catalog.build(prepared, FaultEnv(target, state_dir))
    fault.inject(); ...; fault.revert()
    catalog.close(env)
"""

from __future__ import annotations

from collections.abc import Mapping

from paychaos.chaos import docker_faults
from paychaos.chaos.base import Fault as ChaosFault
from paychaos.chaos.controller import ChaosController
from paychaos.chaos.registry import FaultRegistry, default_registry
from paychaos.chaos.target import FaultTarget
from paychaos.contracts.errors import FaultInjectionFailed, InvalidFault, RollbackFailed
from paychaos.contracts.faults import TTL_MARGIN_S, Fault, FaultEnv, PreparedFault
from paychaos.contracts.target import Target

#: Process faults that have a container version (same name, same parameters, same
#: meaning: ``kill`` is a crash the supervisor — here the engine's restart policy — repairs).
ALIASES: dict[str, type[ChaosFault]] = {
    "kill": docker_faults.DockerCrash,
    "pause": docker_faults.DockerPause,
    "restart": docker_faults.DockerRestart,
}


def _alias(name: str, cls: type[ChaosFault]) -> type[ChaosFault]:
    return type(f"{cls.__name__}As{name.title()}", (cls,), {"name": name})


def docker_registry() -> FaultRegistry:
    """Every fault, with the container versions of ``kill``, ``pause`` and ``restart``."""
    registry = FaultRegistry()
    for fault in default_registry():
        if fault.name not in ALIASES:
            registry.register(fault)
    for name, cls in ALIASES.items():
        registry.register(_alias(name, cls))
    for cls in docker_faults.FAULTS:
        registry.register(cls)
    return registry


def full_registry() -> FaultRegistry:
    """Every fault name a scenario may use (processes' versions of the aliases)."""
    registry = default_registry()
    for cls in docker_faults.FAULTS:
        registry.register(cls)
    return registry


def registry_for(target: Target) -> FaultRegistry:
    """The registry whose faults act on ``target``: containers where it has no processes."""
    act = target.actuators
    return docker_registry() if act.docker and act.processes is None else full_registry()


class _ControllerFault:
    """A chaos-layer fault injected and reverted through a :class:`ChaosController`."""

    def __init__(self, fault: ChaosFault, controller: ChaosController) -> None:
        self.name = fault.name
        self.target = fault.target_label()
        self._fault, self._controller = fault, controller
        self._id: str | None = None

    def inject(self) -> None:
        self._id = self._controller.inject(self._fault).id

    def revert(self) -> None:
        if self._id is None:
            return
        try:
            self._controller.revert(self._id)
        except (FaultInjectionFailed, InvalidFault) as exc:
            raise RollbackFailed(f"{self.name}: {exc}") from exc
        self._id = None


class RegistryFaultCatalog:
    """:class:`~paychaos.contracts.faults.FaultCatalog` on the chaos registry."""

    def __init__(self, registry: FaultRegistry | None = None) -> None:
        self._registry = registry or full_registry()

    def names(self) -> list[str]:
        return sorted(self._registry.names())

    def validate(self, name: str, params: Mapping[str, object], duration_s: float) -> PreparedFault:
        return self._registry.get(name).prepare(params, duration_s + TTL_MARGIN_S)

    def requires(self, prepared: PreparedFault) -> list[str]:
        if not isinstance(prepared, ChaosFault):
            return []
        needs = prepared.requires()
        if prepared.name in ALIASES:
            component = prepared.param_dict().get("component")
            return [f"process.{component}|container.{component}"]
        return needs

    def build(self, prepared: PreparedFault, env: FaultEnv) -> Fault:
        if not isinstance(prepared, ChaosFault):
            raise InvalidFault(f"{prepared.name}: not prepared by the chaos registry")
        if not env.controllers:
            registry = registry_for(env.target)
            chaos = FaultTarget(env.target, state_dir=env.state_dir, allow_hosts=env.allow_hosts)
            env.controllers.append(ChaosController(chaos, registry=registry))
        controller: ChaosController = env.controllers[0]
        # the target's own implementation of the fault (a process or a container)
        fault = controller.registry.get(prepared.name).prepare(
            prepared.param_dict(), prepared.duration_s
        )
        return _ControllerFault(fault, controller)

    def close(self, env: FaultEnv) -> list[str]:
        """Revert whatever the controllers still hold; the problems, if any."""
        errors = []
        for controller in env.controllers:
            try:
                controller.close()
            except (RollbackFailed, FaultInjectionFailed) as exc:
                errors.append(str(exc))
        env.controllers.clear()
        return errors


def default_catalog() -> RegistryFaultCatalog:
    """The fault families scenarios may name (``paychaos chaos list`` shows them)."""
    return RegistryFaultCatalog()


__all__ = [
    "ALIASES",
    "RegistryFaultCatalog",
    "default_catalog",
    "docker_registry",
    "full_registry",
    "registry_for",
]
