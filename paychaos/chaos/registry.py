"""The registry of fault types: what ``paychaos chaos list`` shows and ``inject`` finds.

Example::

    registry = default_registry()
    fault = registry.get("db-latency").prepare({"latency_ms": 300}, duration_s=60)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from paychaos.chaos.base import Fault
from paychaos.contracts.errors import InvalidFault


class FaultRegistry:
    """Fault types by name."""

    def __init__(self, faults: Iterable[type[Fault]] = ()) -> None:
        self._faults: dict[str, type[Fault]] = {}
        for fault in faults:
            self.register(fault)

    def register(self, fault: type[Fault]) -> type[Fault]:
        if fault.name in self._faults:
            raise ValueError(f"fault {fault.name!r} is registered twice")
        self._faults[fault.name] = fault
        return fault

    def get(self, name: str) -> type[Fault]:
        try:
            return self._faults[name]
        except KeyError:
            raise InvalidFault(
                f"unknown fault {name!r}; known faults: {', '.join(self._faults)} "
                "(see: paychaos chaos list)"
            ) from None

    def __iter__(self) -> Iterator[type[Fault]]:
        return iter(self._faults.values())

    def __contains__(self, name: object) -> bool:
        return name in self._faults

    def names(self) -> list[str]:
        return list(self._faults)


def default_registry() -> FaultRegistry:
    """Every fault family of paychaos."""
    from paychaos.chaos import db, deploy, gateway, memory, network, process

    return FaultRegistry(
        (
            *db.FAULTS,
            *gateway.FAULTS,
            *network.FAULTS,
            *process.FAULTS,
            *memory.FAULTS,
            *deploy.FAULTS,
        )
    )
