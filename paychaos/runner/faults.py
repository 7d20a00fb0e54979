"""The faults a scenario puts on its timeline, as the runner sees them.

The runner needs little: a catalog that validates a fault step (pure, before
anything runs) and builds a :class:`Fault` it can ``inject`` and ``revert``
(idempotently). :class:`RegistryFaultCatalog` implements it on the chaos
layer (``paychaos.chaos.registry`` + ``paychaos.chaos.controller.ChaosController``): every
injection is journaled and carries a TTL to the target, so it ends by
itself even if the runner is SIGKILLed.

Example::

    catalog = RegistryFaultCatalog()
    prepared = catalog.validate("db-latency", {"latency_ms": 300}, duration_s=30)
    fault = catalog.build(prepared, env)
    fault.inject(); ...; fault.revert()
    catalog.close(env)             # reverts anything still injected
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from paychaos.contracts.errors import FaultInjectionFailed, InvalidFault, RollbackFailed

if TYPE_CHECKING:
    from paychaos.chaos.base import Fault as ChaosFault
    from paychaos.chaos.controller import ChaosController
    from paychaos.chaos.target import StackTarget

#: A fault's TTL outlives its planned duration by this much (the runner reverts first).
TTL_MARGIN_S = 15.0


class PreparedFault(Protocol):
    """A validated fault step (name, parameters, TTL), not applied."""

    @property
    def name(self) -> str: ...

    def param_dict(self) -> dict[str, Any]: ...


class Fault(Protocol):
    """One applied-or-not fault: ``inject`` once, then ``revert`` (idempotent)."""

    name: str
    target: str

    def inject(self) -> None: ...

    def revert(self) -> None: ...


@dataclass
class FaultEnv:
    """Where faults are applied: the chaos layer's view of the stack."""

    target: Callable[[], StackTarget]
    controllers: list[ChaosController] = field(default_factory=list)


class FaultCatalog(Protocol):
    """Fault families by name: validate a step (pure), build a runnable fault."""

    def names(self) -> list[str]: ...

    def validate(
        self, name: str, params: Mapping[str, object], duration_s: float
    ) -> PreparedFault: ...

    def build(self, prepared: PreparedFault, env: FaultEnv) -> Fault: ...

    def close(self, env: FaultEnv) -> list[str]: ...


_PARAM = re.compile(r"(?:unknown )?parameter '?([A-Za-z0-9_-]+)'?")


def param_of_error(message: str) -> str | None:
    """The parameter an :class:`InvalidFault` message names (``None``: the fault itself)."""
    match = _PARAM.search(message)
    return match.group(1).lstrip("-").replace("-", "_") if match else None


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
    """The chaos layer's registry (``paychaos chaos list`` shows the same faults)."""

    def __init__(self) -> None:
        from paychaos.chaos.registry import default_registry

        self._registry = default_registry()

    def names(self) -> list[str]:
        return sorted(self._registry.names())

    def validate(self, name: str, params: Mapping[str, object], duration_s: float) -> PreparedFault:
        fault = self._registry.get(name).prepare(params, duration_s + TTL_MARGIN_S)
        return fault

    def build(self, prepared: PreparedFault, env: FaultEnv) -> Fault:
        from paychaos.chaos.base import Fault as ChaosFault
        from paychaos.chaos.controller import ChaosController

        if not isinstance(prepared, ChaosFault):
            raise InvalidFault(f"{prepared.name}: not prepared by the chaos registry")
        if not env.controllers:
            env.controllers.append(ChaosController(env.target()))
        return _ControllerFault(prepared, env.controllers[0])

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
