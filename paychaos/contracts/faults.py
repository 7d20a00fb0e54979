"""The faults a scenario puts on its timeline, as the engine sees them.

The runner needs little: a :class:`FaultCatalog` that validates a fault step
(pure, before anything runs), says what the fault needs of a target
(:meth:`FaultCatalog.requires`), and builds a :class:`Fault` it can ``inject``
and ``revert`` (idempotently) on a target. The chaos layer implements it
(:class:`paychaos.chaos.catalog.RegistryFaultCatalog`): every injection is
journaled and carries a TTL to the target, so it ends by itself even if the
runner is SIGKILLed.

Example::

    prepared = catalog.validate("db-latency", {"latency_ms": 300}, duration_s=30)
    catalog.requires(prepared)          # ["proxy.database"]
    fault = catalog.build(prepared, env)
    fault.inject(); ...; fault.revert()
    catalog.close(env)                  # reverts anything still injected
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from paychaos.contracts.target import Target

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
    """Where faults are applied: the target, and where the chaos journal goes."""

    target: Target
    state_dir: Path
    allow_hosts: tuple[str, ...] = ()
    controllers: list[Any] = field(default_factory=list)
    """The implementation's per-run state (the chaos controllers), closed by ``close``."""
    traffic: Any = None
    """The run's traffic driver, for faults that are traffic (a card tester); set by the runner."""


class FaultCatalog(Protocol):
    """Fault families by name: validate a step (pure), build a runnable fault."""

    def names(self) -> list[str]: ...

    def validate(
        self, name: str, params: Mapping[str, object], duration_s: float
    ) -> PreparedFault: ...

    def requires(self, prepared: PreparedFault) -> list[str]:
        """Capabilities the fault needs (``a|b``: either), as in :mod:`paychaos.contracts.target`."""
        ...

    def build(self, prepared: PreparedFault, env: FaultEnv) -> Fault: ...

    def close(self, env: FaultEnv) -> list[str]: ...


_PARAM = re.compile(r"(?:unknown )?parameter '?([A-Za-z0-9_-]+)'?")


def param_of_error(message: str) -> str | None:
    """The parameter an ``InvalidFault`` message names (``None``: the fault itself)."""
    match = _PARAM.search(message)
    return match.group(1).lstrip("-").replace("-", "_") if match else None


__all__ = [
    "TTL_MARGIN_S",
    "Fault",
    "FaultCatalog",
    "FaultEnv",
    "PreparedFault",
    "param_of_error",
]
