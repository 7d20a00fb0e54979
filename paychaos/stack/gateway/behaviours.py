"""Admin-injected faults ("behaviours") and their expiry.

A behaviour is validated into a frozen :class:`BehaviourSpec`, then held by the
:class:`BehaviourStore` until its TTL runs out or it is deleted. Expiry belongs
to the gateway: :meth:`BehaviourStore.effect` ignores expired behaviours at
request time, and :meth:`BehaviourStore.sweep` (called periodically and on
every scrape) drops them and turns their ``chaos_fault_active`` gauges to 0.

Several behaviours combine into one :class:`Effect`: latency adds up, rates
take the maximum, ``ignore_idempotency`` is on if any asks for it.

Example::

    store = BehaviourStore()
    spec = parse_behaviour({"method": "paypal", "error_rate": 1, "ttl_s": 30})
    active = store.add(spec)
    store.effect("paypal").error_rate   # 1.0
    store.effect("visa").error_rate     # 0.0
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from paychaos.contracts.messages import validation_message

FAULTS: tuple[str, ...] = (
    "gateway_latency",
    "gateway_errors",
    "gateway_timeouts",
    "gateway_declines",
    "gateway_double_charge",
)
MAX_HANG_S = 120.0


class InvalidBehaviour(ValueError):
    """A behaviour payload is malformed; ``param`` names the offending field."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


class BehaviourSpec(BaseModel):
    """What an admin asked for (validated, immutable)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    method: Literal["visa", "amex", "paypal", "crypto", "*"]
    added_latency_ms: float = Field(default=0.0, ge=0, le=600_000)
    latency_jitter_ms: float = Field(default=0.0, ge=0, le=600_000)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_status: Literal[500, 502, 503] = 503
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    decline_rate: float | None = Field(default=None, ge=0, le=1)
    ignore_idempotency: bool = False
    ttl_s: float = Field(ge=1, le=3600)

    def faults(self) -> tuple[str, ...]:
        """The ``chaos_fault_active`` fault names this behaviour turns on."""
        names = []
        if self.added_latency_ms > 0 or self.latency_jitter_ms > 0:
            names.append("gateway_latency")
        if self.error_rate > 0:
            names.append("gateway_errors")
        if self.timeout_rate > 0:
            names.append("gateway_timeouts")
        if self.decline_rate is not None:
            names.append("gateway_declines")
        if self.ignore_idempotency:
            names.append("gateway_double_charge")
        return tuple(names)

    @property
    def target(self) -> str:
        return f"gateway/{self.method}"


def parse_behaviour(payload: Any) -> BehaviourSpec:
    """Validate an admin payload; raises :class:`InvalidBehaviour` naming the field."""
    if not isinstance(payload, dict):
        raise InvalidBehaviour("body", "must be a JSON object")
    try:
        return BehaviourSpec.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(part) for part in first["loc"] if not isinstance(part, int)]
        # Literal/union errors append the branch name (e.g. "float"); keep the field.
        param = loc[0] if loc else "body"
        raise InvalidBehaviour(param, validation_message(first)) from None


@dataclass(eq=False)
class ActiveBehaviour:
    """A behaviour in force: its spec, id, and when it ends."""

    id: str
    spec: BehaviourSpec
    created_at: float
    expires_at: float  # wall clock, unix seconds
    expires_mono: float  # monotonic clock, what expiry is checked against
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def remaining_s(self, now_mono: float) -> float:
        return max(0.0, self.expires_mono - now_mono)

    def to_dict(self, now_mono: float) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, **self.spec.model_dump()}
        body["created_at"] = round(self.created_at, 3)
        body["expires_at"] = round(self.expires_at, 3)
        body["remaining_s"] = round(self.remaining_s(now_mono), 3)
        body["faults"] = list(self.spec.faults())
        body["target"] = self.spec.target
        return body


@dataclass(frozen=True, slots=True)
class Effect:
    """The combined effect of every active behaviour on one method."""

    added_latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    timeout_rate: float = 0.0
    decline_rate: float | None = None
    ignore_idempotency: bool = False
    hang: ActiveBehaviour | None = None  # the behaviour whose timeout_rate won

    @property
    def is_noop(self) -> bool:
        return self is NO_EFFECT


NO_EFFECT = Effect()

GaugeSetter = Callable[[str, str, float], None]


class BehaviourStore:
    """The active behaviours, expiring by themselves.

    ``set_gauge(fault, target, value)`` is called whenever a ``(fault, target)``
    pair turns on or off; ``clock`` (monotonic) and ``wall`` are injectable.
    """

    def __init__(
        self,
        *,
        set_gauge: GaugeSetter | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._active: dict[str, ActiveBehaviour] = {}
        self._set_gauge = set_gauge
        self._clock = clock
        self._wall = wall
        self._shown: dict[tuple[str, str], float] = {}
        self._cache: dict[str, Effect] = {}
        self._cache_valid_until = 0.0

    def add(self, spec: BehaviourSpec) -> ActiveBehaviour:
        now_mono, now_wall = self._clock(), self._wall()
        active = ActiveBehaviour(
            id="bh_" + secrets.token_hex(8),
            spec=spec,
            created_at=now_wall,
            expires_at=now_wall + spec.ttl_s,
            expires_mono=now_mono + spec.ttl_s,
        )
        self._active[active.id] = active
        self._changed()
        return active

    def remove(self, behaviour_id: str) -> bool:
        active = self._active.pop(behaviour_id, None)
        if active is None:
            return False
        active.ended.set()
        self._changed()
        return True

    def clear(self) -> int:
        removed = list(self._active.values())
        self._active.clear()
        for active in removed:
            active.ended.set()
        self._changed()
        return len(removed)

    def active(self) -> list[ActiveBehaviour]:
        """Behaviours still in force (expired ones are swept first)."""
        self.sweep()
        return list(self._active.values())

    def get(self, behaviour_id: str) -> ActiveBehaviour | None:
        self.sweep()
        return self._active.get(behaviour_id)

    def sweep(self) -> int:
        """Drop expired behaviours, release requests they hang, update gauges."""
        now = self._clock()
        expired = [b for b in self._active.values() if b.expires_mono <= now]
        for active in expired:
            del self._active[active.id]
            active.ended.set()
        self._changed()
        return len(expired)

    def now(self) -> float:
        return self._clock()

    def __len__(self) -> int:
        return len(self._active)

    def effect(self, method: str) -> Effect:
        """The combined effect on ``method`` right now (expired behaviours ignored)."""
        if not self._active:
            return NO_EFFECT
        now = self._clock()
        if now < self._cache_valid_until:
            cached = self._cache.get(method)
            if cached is not None:
                return cached
        live = [b for b in self._active.values() if b.expires_mono > now]
        if now >= self._cache_valid_until:
            self._cache.clear()
            self._cache_valid_until = min((b.expires_mono for b in live), default=math.inf)
        result = _combine(b for b in live if b.spec.method in (method, "*"))
        self._cache[method] = result
        return result

    def _changed(self) -> None:
        self._cache.clear()
        self._cache_valid_until = 0.0
        wanted: dict[tuple[str, str], float] = {}
        for active in self._active.values():
            for fault in active.spec.faults():
                wanted[(fault, active.spec.target)] = 1.0
        for pair in self._shown:
            wanted.setdefault(pair, 0.0)
        if self._set_gauge is not None:
            for (fault, target), value in wanted.items():
                if self._shown.get((fault, target)) != value:
                    self._set_gauge(fault, target, value)
        self._shown = wanted


def _combine(behaviours: Iterable[ActiveBehaviour]) -> Effect:
    latency = jitter = error_rate = timeout_rate = 0.0
    error_status = 503
    decline_rate: float | None = None
    ignore = False
    hang: ActiveBehaviour | None = None
    any_found = False
    for active in behaviours:
        any_found = True
        spec = active.spec
        latency += spec.added_latency_ms
        jitter += spec.latency_jitter_ms
        if spec.error_rate > error_rate:
            error_rate, error_status = spec.error_rate, spec.error_status
        if spec.timeout_rate > timeout_rate:
            timeout_rate, hang = spec.timeout_rate, active
        if spec.decline_rate is not None:
            decline_rate = max(decline_rate or 0.0, spec.decline_rate)
        ignore = ignore or spec.ignore_idempotency
    if not any_found:
        return NO_EFFECT
    return Effect(
        latency, jitter, error_rate, error_status, timeout_rate, decline_rate, ignore, hang
    )
