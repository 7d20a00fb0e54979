"""The charge pipeline: idempotency, injected faults, latency, decline, ledger.

Order of a charge request (already validated):

1. count the attempt against its idempotency key;
2. unless a behaviour ignores idempotency: a key that already has a charge is
   replayed (same status and body) or, with other parameters, rejected 422; a
   key whose first request is still in flight is rejected 409;
3. injected hang (``timeout_rate``): no answer until the behaviour ends, its
   TTL runs out or ``max_hang_s`` passes, then 504;
4. processor latency (profile, scaled) plus injected latency and jitter;
5. injected error (``error_rate``): 500/502/503, nothing stored, so a retry
   with the same key is processed afresh;
6. decline (magic test values first, then the card-testing screen of
   :mod:`.screen` for card charges that name a customer, then the profile or
   injected rate) or success: the charge is recorded in the ledger and
   answered 201/402.

Example::

    processor = ChargeProcessor(Ledger(), BehaviourStore(), Sampler(DEFAULT_PROFILES))
    result = await processor.charge("key-1", parse_charge(body))
    result.status_code, result.outcome   # (201, "succeeded")
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from .behaviours import MAX_HANG_S, ActiveBehaviour, BehaviourStore, Effect
from .charges import ChargeRequest
from .ledger import Charge, Ledger
from .profiles import CARD_METHODS, Sampler
from .screen import CardTestingScreen


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """What to answer: status, JSON body, and the outcome label for telemetry."""

    status_code: int
    body: bytes
    outcome: str  # succeeded | declined | error | timeout | replayed | rejected
    charge: Charge | None = None
    decline_code: str | None = None

    @property
    def replayed(self) -> bool:
        return self.outcome == "replayed"


def error_body(error_type: str, message: str, param: str | None = None) -> bytes:
    """The JSON error envelope every non-charge answer uses."""
    error: dict[str, str] = {"type": error_type, "message": message}
    if param is not None:
        error["param"] = param
    return orjson.dumps({"error": error})


class ChargeProcessor:
    """Turns validated charge requests into results, holding in-flight keys."""

    def __init__(
        self,
        ledger: Ledger,
        behaviours: BehaviourStore,
        sampler: Sampler,
        *,
        max_hang_s: float = MAX_HANG_S,
        wall: Callable[[], float] = time.time,
        screen: CardTestingScreen | None = None,
    ) -> None:
        self.ledger = ledger
        self.screen = screen or CardTestingScreen()
        self.behaviours = behaviours
        self.sampler = sampler
        self.max_hang_s = max_hang_s
        self._wall = wall
        self._in_flight: set[str] = set()

    async def charge(self, key: str, request: ChargeRequest) -> ChargeResult:
        self.ledger.note_attempt(key)
        effect = self.behaviours.effect(request.method)
        guarded = not effect.ignore_idempotency
        if guarded:
            existing = self.ledger.first_for_key(key)
            if existing is not None:
                if existing.fingerprint != request.fingerprint:
                    return ChargeResult(
                        422,
                        error_body(
                            "idempotency_error",
                            "this Idempotency-Key was already used with other parameters",
                            "Idempotency-Key",
                        ),
                        "rejected",
                    )
                status = 201 if existing.status == "succeeded" else 402
                return ChargeResult(
                    status,
                    orjson.dumps(existing.response_body()),
                    "replayed",
                    existing,
                    existing.decline_code,
                )
            if key in self._in_flight:
                return ChargeResult(
                    409,
                    error_body(
                        "idempotency_error",
                        "a request with this Idempotency-Key is still in progress; retry later",
                        "Idempotency-Key",
                    ),
                    "rejected",
                )
            self._in_flight.add(key)
        try:
            return await self._process(key, request, effect)
        finally:
            if guarded:
                self._in_flight.discard(key)

    async def _process(self, key: str, request: ChargeRequest, effect: Effect) -> ChargeResult:
        sampler = self.sampler
        if effect.timeout_rate > 0.0 and sampler.chance(effect.timeout_rate):
            await self._hang(effect.hang)
            return ChargeResult(
                504, error_body("api_error", "the processor did not answer in time"), "timeout"
            )
        delay_s = sampler.latency_s(request.method)
        if effect.added_latency_ms > 0.0 or effect.latency_jitter_ms > 0.0:
            jitter = effect.latency_jitter_ms
            added_ms = effect.added_latency_ms + (
                sampler.uniform(-jitter, jitter) if jitter else 0.0
            )
            delay_s = max(0.0, delay_s + added_ms / 1000.0)
        if delay_s > 0.0:
            await asyncio.sleep(delay_s)
        if effect.error_rate > 0.0 and sampler.chance(effect.error_rate):
            return ChargeResult(
                effect.error_status,
                error_body("api_error", f"the {request.method} processor failed (injected)"),
                "error",
            )
        decline_code = (
            request.magic_decline
            or self._screened(request)
            or sampler.decline_code(request.method, effect.decline_rate)
        )
        charge = Charge(
            id="ch_" + secrets.token_hex(12),
            status="declined" if decline_code else "succeeded",
            amount_cents=request.amount_cents,
            currency=request.currency,
            method=request.method,
            payment_id=request.payment_id,
            idempotency_key=key,
            created_at=round(self._wall(), 3),
            fingerprint=request.fingerprint,
            decline_code=decline_code,
        )
        self.ledger.record(charge)
        return ChargeResult(
            402 if decline_code else 201,
            orjson.dumps(charge.response_body()),
            "declined" if decline_code else "succeeded",
            charge,
            decline_code,
        )

    def _screened(self, request: ChargeRequest) -> str | None:
        if request.method not in CARD_METHODS:
            return None
        return self.screen.decline_code(request.customer, request.secret, now=time.monotonic())

    async def _hang(self, behaviour: ActiveBehaviour | None) -> None:
        """Wait until the hanging behaviour ends, bounded by its TTL and ``max_hang_s``."""
        bound_s = self.max_hang_s
        if behaviour is None:
            await asyncio.sleep(bound_s)
            return
        bound_s = min(bound_s, behaviour.remaining_s(self.behaviours.now()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(behaviour.ended.wait(), timeout=bound_s)
