"""The fault interface every fault family implements.

A fault is a *type* (``db-latency``) with a frozen parameters dataclass, and an
*instance*: validated parameters plus a TTL. Its life::

    fault = DbLatency.prepare({"latency_ms": "300"}, duration_s=60)   # pure validation
    fault.check(target)                   # read-only: is the target there, loopback?
    fault.inject(ctx, applied)            # records what it changed in ``applied``
    fault.revert(target, applied)         # idempotent; works from another process

Rules every fault keeps:

- ``prepare`` raises :class:`~paychaos.contracts.errors.InvalidFault` naming the
  parameter, before anything is touched;
- ``inject`` writes into ``applied`` (JSON-able) each change *as it makes it*,
  so that a half-applied fault can be rolled back from that record;
- every change carries its TTL to the target (proxy toxic TTL, gateway
  behaviour TTL, watchdog deadline, hog's own alarm), so it ends by itself
  even if the controller is SIGKILLed;
- ``revert`` accepts a partial record and a fault already gone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from paychaos.chaos.params import ParamSpec, param_specs, parse_params
from paychaos.chaos.target import FaultTarget
from paychaos.contracts.errors import InvalidFault

Applied = dict[str, Any]
"""What ``inject`` changed, JSON-able: stored in the journal, read by ``revert``."""

DEFAULT_MAX_DURATION_S = 3600.0
MIN_DURATION_S = 1.0


@dataclass(frozen=True)
class InjectContext:
    """What ``inject`` needs besides its parameters.

    ``detached`` is True when the controller will not stay to revert (``paychaos
    chaos inject`` without ``--wait``): helper processes must then not die with
    it, and live on their own TTL alone.
    """

    fault_id: str
    target: FaultTarget
    ttl_s: float
    expires_at: float
    journal_path: Path
    detached: bool = False


@dataclass(frozen=True)
class NoParams:
    """For faults without parameters."""


class Fault(ABC):
    """One injectable fault: validated parameters plus a TTL."""

    name: ClassVar[str]
    family: ClassVar[str]
    description: ClassVar[str]
    params_cls: ClassVar[type[Any]] = NoParams
    metric_fault: ClassVar[str]
    """The ``fault`` label of ``chaos_fault_active`` for this fault."""
    exported_by_target: ClassVar[bool] = True
    """True when the target itself exports ``chaos_fault_active`` (proxy, gateway);
    otherwise the instance exporter derives it from the journal."""
    max_duration_s: ClassVar[float] = DEFAULT_MAX_DURATION_S

    def __init__(self, params: Any, duration_s: float) -> None:
        self.params = params
        self.duration_s = duration_s

    # -- validation (pure) --------------------------------------------------------
    @classmethod
    def param_specs(cls) -> tuple[ParamSpec, ...]:
        return param_specs(cls.params_cls)

    @classmethod
    def prepare(cls, raw: Mapping[str, object], duration_s: float | None) -> Fault:
        """Validate parameters and TTL; touches nothing. Raises InvalidFault."""
        if duration_s is None:
            raise InvalidFault(
                f"{cls.name}: a duration is required (--for 60s): every fault has a TTL "
                f"of at most {cls.max_duration_s:.0f}s"
            )
        if not MIN_DURATION_S <= duration_s <= cls.max_duration_s:
            raise InvalidFault(
                f"{cls.name}: duration (--for) must be between {MIN_DURATION_S:.0f}s and "
                f"{cls.max_duration_s:.0f}s, got {duration_s:g}s"
            )
        params = parse_params(cls.name, cls.params_cls, raw)
        fault = cls(params, float(duration_s))
        fault.validate()
        return fault

    def validate(self) -> None:
        """Cross-parameter checks (raise InvalidFault); the default has none."""
        return None

    def param_dict(self) -> dict[str, Any]:
        return asdict(self.params)

    # -- the target ---------------------------------------------------------------
    @abstractmethod
    def target_label(self) -> str:
        """The ``target`` label: ``proxy/postgres``, ``gateway/paypal``, ``process/api``."""

    def requires(self) -> list[str]:
        """The target capabilities this fault needs (``a|b``: either will do).

        See :data:`paychaos.contracts.target.CAPABILITIES`; the runner refuses a
        scenario whose target lacks one, before anything starts.
        """
        return []

    def check(self, target: FaultTarget) -> None:
        """Read-only checks that the target can take this fault (loopback, exists)."""
        return None

    # -- the change ---------------------------------------------------------------
    @abstractmethod
    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        """Apply the fault with its TTL; record every change in ``applied`` as made."""

    @abstractmethod
    def revert(self, target: FaultTarget, applied: Mapping[str, Any]) -> dict[str, Any]:
        """Undo what ``applied`` records (idempotent); returns details for the journal."""

    def describe(self) -> str:
        args = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in self.param_dict().items())
        return f"{self.name} {args} --for {self.duration_s:g}s".replace("  ", " ")
