"""The shopper model every traffic driver shares: who buys what, how they pay, RUM, retries, ledger.

One model, four drivers (the Locust shopper, the scenario driver, the bounded
``loadgen`` driver of the demo, the OOM demo and the benches): each keeps its
own concurrency and IO (gevent, asyncio) and takes everything else from here::

    model = ShopperModel(mix={"visa": 45, "paypal": 30, "crypto": 15, "amex": 10}, seed=7)
    client = CheckoutClient(target.checkout)               # how to call the target's API
    purchase = model.purchase(rng)                         # a customer, a cart, a method
    payment = Payment(client, purchase.cart("chk-run-1"), RetryPolicy(max_attempts=3))
    while True:
        status, body = send(payment.request)               # the driver's own IO
        payment.answer(status, body)
        if payment.done:
            break
        sleep(payment.backoff_s(rng))                      # same key, bounded, jittered
    ledger.write(payment.ledger_entry(ts, latency_ms))     # the client ledger line

- **Who buys what**: :class:`ShopperModel` draws a method by the mix
  (:data:`paychaos.contracts.domain.DEFAULT_MIX` by default), then one of a
  pool of pre-built :class:`Purchase` objects of that method (a faker
  customer, a popularity-weighted cart, its amount and currency, a payment
  token; card payments decline at ``decline_rate`` with a declining test
  card). The pools are built once per process; a draw is an index.
- **How they pay**: :meth:`Purchase.cart` is the adapter's
  :class:`~paychaos.traffic.adapter.Cart` for an idempotency key; a
  :class:`Payment` holds the request and the answers; :class:`RetryPolicy`
  retries the adapter's *retry* and *unknown* verdicts with the same key.
- **RUM**: :func:`visit`, :func:`click_payment`, :func:`attempt_failed` and
  :func:`payment_result` record a visit's Faro items on a
  :class:`~paychaos.traffic.rum.Journey` (``click_payment_button`` with
  ``method`` and ``cart_value``, page views with web vitals, ``PaymentError``
  exceptions for failed attempts, the outcome).
- **The ledger line**: :meth:`Payment.ledger_entry`
  (:class:`~paychaos.traffic.ledger.LedgerEntry`).

Nothing here imports gevent or Locust.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from paychaos.contracts.domain import DEFAULT_MIX, METHODS
from paychaos.contracts.errors import InvalidInput
from paychaos.traffic.adapter import (
    FINAL,
    LEDGER_OUTCOME,
    Cart,
    CheckoutClient,
    Verdict,
    builtin_parts,
)
from paychaos.traffic.catalog import DECLINE_TOKENS, ShopperPools, money
from paychaos.traffic.ledger import LedgerEntry
from paychaos.traffic.rum import Journey, iso_timestamp

PAYMENT_CLICK = "click_payment_button"
PAYMENT_RESULT = "payment_result"
PAYMENT_ERROR = "PaymentError"
SHOP_URL = "https://shop.example/"
POOL_SIZE = 512
DECLINED_POOL_SIZE = 64

_POOLS: dict[int | None, ShopperPools] = {}


def pools_for(seed: int | None) -> ShopperPools:
    """The process's faker pools for ``seed`` (generated once, about 0.5 s)."""
    if seed not in _POOLS:
        _POOLS[seed] = ShopperPools.generate(seed)
    return _POOLS[seed]


def normalise_mix(mix: Mapping[str, float]) -> dict[str, float]:
    """Shares by method (percent or fractions), checked; zero shares dropped."""
    unknown = [m for m in mix if m not in METHODS]
    if unknown:
        raise InvalidInput(f"unknown payment method {unknown[0]!r}; methods: {', '.join(METHODS)}")
    if not mix or any(not share >= 0 for share in mix.values()) or sum(mix.values()) <= 0:
        raise InvalidInput(f"method mix must have positive shares, got {dict(mix)}")
    total = sum(mix.values())
    return {m: share / total for m, share in mix.items() if share > 0}


def plan_methods(total: int, mix: Mapping[str, float], rng: random.Random) -> list[str]:
    """``total`` checkouts split by share exactly (largest remainder), shuffled."""
    shares = normalise_mix(mix)
    exact = {method: total * share for method, share in shares.items()}
    counts = {method: int(value) for method, value in exact.items()}
    by_remainder = sorted(exact, key=lambda m: exact[m] - counts[m], reverse=True)
    for method in by_remainder[: total - sum(counts.values())]:
        counts[method] += 1
    plan = [method for method, count in counts.items() for _ in range(count)]
    rng.shuffle(plan)
    return plan


# ---------------------------------------------------------------- who buys what


class Purchase(NamedTuple):
    """What one shopper buys and how they pay, with what their browser reports of it.

    Shared between draws: read-only (the dicts and lists too).
    """

    method: str
    customer: dict[str, Any]
    items: list[dict[str, Any]]
    payment: dict[str, Any]
    amount_cents: int
    currency: str
    cart_value: str
    item_count: int
    session_attributes: dict[str, str]
    cart_json: bytes  # {"items", "cart_value"}: the add_to_cart event's attributes
    click_json: bytes  # {"method", "cart_value"}: the click_payment_button event's
    builtin_parts: tuple[bytes, bytes]  # the built-in body around its order_id (a splice)

    def cart(self, key: str) -> Cart:
        """The adapter's cart for idempotency key ``key`` (order id ``ord_<key>``)."""
        return Cart(
            key,
            self.method,
            self.amount_cents,
            self.currency,
            self.customer,
            self.items,
            self.payment,
            "ord_" + key,
            self.builtin_parts,
        )


def _purchase(pools: ShopperPools, rng: random.Random, method: str, decline: float) -> Purchase:
    customer = pools.customer(rng)
    cart = pools.cart(rng)
    value = cart.value_cents
    cart_value = money(value)
    purchase = Purchase(
        method=method,
        customer={"id": customer.id, "email": customer.email, "name": customer.name},
        items=[
            {
                "sku": line.product.sku,
                "name": line.product.name,
                "quantity": line.quantity,
                "unit_price": money(line.product.price_cents),
            }
            for line in cart.lines
        ],
        payment=pools.payment(rng, method, decline),
        amount_cents=value,
        currency=customer.currency,
        cart_value=cart_value,
        item_count=cart.item_count,
        session_attributes={"country": customer.country, "city": customer.city},
        cart_json=orjson.dumps({"items": str(cart.item_count), "cart_value": cart_value}),
        click_json=orjson.dumps({"method": method, "cart_value": cart_value}),
        builtin_parts=(b"", b""),
    )
    parts = builtin_parts(purchase.cart("chk-model"))
    return purchase._replace(builtin_parts=parts)


class ShopperModel:
    """Who buys what: the mix, the pools of purchases, the draws (see the module docstring).

    ``mix`` is shares by method (percent or fractions); ``decline_rate`` is the
    share of card payments made with a declining test card; ``seed`` makes the
    customers, carts and tokens reproducible.
    """

    def __init__(
        self,
        mix: Mapping[str, float] = DEFAULT_MIX,
        *,
        seed: int | None = None,
        decline_rate: float = 0.0,
        pool_size: int = POOL_SIZE,
        declined_size: int = DECLINED_POOL_SIZE,
        pools: ShopperPools | None = None,
    ) -> None:
        if not 0 <= decline_rate <= 1:
            raise InvalidInput(f"decline_rate must be between 0 and 1, got {decline_rate}")
        if pool_size < 1:
            raise InvalidInput(f"pool_size must be at least 1, got {pool_size}")
        self.mix = normalise_mix(mix)
        self.decline_rate = decline_rate
        self.pools = pools or pools_for(seed)
        self.methods: tuple[str, ...] = tuple(self.mix)
        self._cum = list(itertools.accumulate(self.mix.values()))
        rng = random.Random(seed)
        self.regular: dict[str, list[Purchase]] = {}
        self.declined: dict[str, list[Purchase]] = {}
        for method in self.methods:
            self.regular[method] = [
                _purchase(self.pools, rng, method, 0.0) for _ in range(pool_size)
            ]
            if method in self.pools.cards and decline_rate > 0:
                self.declined[method] = [
                    _purchase(self.pools, rng, method, 1.0) for _ in range(declined_size)
                ]

    def choose_method(self, rng: random.Random) -> str:
        """A method drawn by the mix."""
        return self.methods[bisect.bisect(self._cum, rng.random() * self._cum[-1])]

    def purchase(self, rng: random.Random, method: str | None = None) -> Purchase:
        """One purchase (of ``method``, or of a method drawn by the mix): an O(1) draw."""
        method = method or self.choose_method(rng)
        pool = self.regular[method]
        if self.decline_rate and method in self.declined and rng.random() < self.decline_rate:
            pool = self.declined[method]
        return pool[int(rng.random() * len(pool))]

    def plan(self, total: int, rng: random.Random) -> list[str]:
        """``total`` methods split exactly by the mix (for bounded runs), shuffled."""
        return plan_methods(total, self.mix, rng)


@functools.lru_cache(maxsize=8)
def _cached_model(mix: tuple[tuple[str, float], ...], seed: int | None) -> ShopperModel:
    return ShopperModel(dict(mix), seed=seed)


def shopper_model(mix: Mapping[str, float] = DEFAULT_MIX, seed: int | None = None) -> ShopperModel:
    """A shared :class:`ShopperModel` for ``mix`` and ``seed`` (built once per process: drivers
    that run many short bursts, like the OOM demo's slices, draw from the same pools)."""
    return _cached_model(tuple(mix.items()), seed)


def declines(purchase: Purchase) -> bool:
    """True when the purchase pays with a test card the processor declines."""
    return purchase.payment.get("card_token") in DECLINE_TOKENS


# ---------------------------------------------------------------- how they pay


@dataclass(frozen=True)
class RetryPolicy:
    """A careful client's retries: the same key, on *retry* and *unknown* verdicts only,
    at most ``max_attempts`` attempts, exponential backoff with jitter capped at ``cap_s``."""

    max_attempts: int = 3
    base_s: float = 0.25
    cap_s: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InvalidInput(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not (self.base_s >= 0 and self.cap_s >= 0):
            raise InvalidInput("retry backoff must not be negative")

    def retries(self, verdict: str, attempts: int) -> bool:
        """Whether to send again after ``attempts`` attempts ending in ``verdict``."""
        return verdict not in FINAL and attempts < self.max_attempts

    def backoff_s(self, attempts: int, rng: random.Random) -> float:
        """The pause before attempt ``attempts + 1`` (0.5x to 1.5x the nominal backoff)."""
        return min(self.cap_s, self.base_s * 2 ** (attempts - 1)) * rng.uniform(0.5, 1.5)


class Payment:
    """One checkout in flight: its request (sent again as is on a retry) and what came back.

    The driver sends :attr:`request`, feeds each answer to :meth:`answer` (status 0
    for a transport error) and stops when :attr:`done`.
    """

    __slots__ = (
        "attempts",
        "cart",
        "client",
        "payment_id",
        "policy",
        "request",
        "status",
        "verdict",
    )

    def __init__(self, client: CheckoutClient, cart: Cart, policy: RetryPolicy) -> None:
        self.client = client
        self.cart = cart
        self.policy = policy
        self.request = client.request(cart)
        self.attempts = 0
        self.status = 0
        self.verdict: Verdict = "unknown"
        self.payment_id: str | None = None

    def answer(self, status: int, body: bytes) -> Verdict:
        """Record one attempt's answer; returns its verdict."""
        self.attempts += 1
        self.status = status
        answer = self.client.interpret(status, body)
        self.verdict = answer.outcome
        self.payment_id = answer.payment_id or self.payment_id
        return answer.outcome

    @property
    def done(self) -> bool:
        """A final verdict, or no attempt left."""
        return not self.policy.retries(self.verdict, self.attempts)

    @property
    def final(self) -> bool:
        """The last answer was final (charged, declined or invalid)."""
        return self.verdict in FINAL

    def backoff_s(self, rng: random.Random) -> float:
        return self.policy.backoff_s(self.attempts, rng)

    @property
    def outcome(self) -> str:
        """The client ledger's outcome (succeeded, declined, rejected, unknown)."""
        return LEDGER_OUTCOME[self.verdict]

    def ledger_entry(
        self, ts: float, latency_ms: float, trace_id: str | None = None
    ) -> LedgerEntry:
        """The client ledger line of this checkout (at least one attempt is counted)."""
        cart = self.cart
        return LedgerEntry(
            ts=ts,
            key=cart.key,
            method=cart.method,
            amount_cents=cart.amount_cents,
            currency=cart.currency,
            attempts=max(1, self.attempts),
            outcome=LEDGER_OUTCOME[self.verdict],
            status=self.status,
            payment_id=self.payment_id,
            trace_id=trace_id,
            latency_ms=round(latency_ms, 1),
        )


# ---------------------------------------------------------------- RUM


def visit(
    rng: random.Random, purchase: Purchase, session_id: str, page_url: str = SHOP_URL
) -> Journey:
    """A new visit's browser (its RUM), with the customer's country and city."""
    return Journey.start(
        rng, session_id=session_id, page_url=page_url, attributes=purchase.session_attributes
    )


def add_to_cart(journey: Journey, purchase: Purchase) -> None:
    journey.event_json("add_to_cart", purchase.cart_json)


def abandon(journey: Journey, purchase: Purchase) -> None:
    journey.event("cart_abandoned", {"cart_value": purchase.cart_value})


def click_payment(
    journey: Journey, purchase: Purchase, trace: tuple[str, str] | None = None
) -> None:
    """The seed's ``click_payment_button`` event (``method``, ``cart_value``)."""
    journey.event_json(PAYMENT_CLICK, purchase.click_json, trace=trace)


def js_error(
    journey: Journey,
    rng: random.Random,
    purchase: Purchase,
    error: tuple[str, str] | None = None,
) -> None:
    """The broken payment button: the click, then a JS exception (``error``: its type and
    message; default: one drawn); no payment leaves."""
    click_payment(journey, purchase)
    journey.exception(rng, purchase.method, error)


def attempt_failed(journey: Journey, method: str, status: int) -> None:
    """A ``PaymentError`` the checkout page shows for one failed attempt (status 0: network)."""
    journey.raw_exception(_payment_error(method, status, time.time()))


def payment_result(
    journey: Journey,
    rng: random.Random,
    method: str,
    outcome: str,
    trace: tuple[str, str] | None = None,
) -> None:
    """The ``payment_result`` event, and the confirmation page after a success."""
    journey.event_json(PAYMENT_RESULT, _result_json(method, outcome), trace=trace)
    if outcome == "succeeded":
        journey.page_view(rng, "confirmation")


def failed_attempt(status: int) -> bool:
    """Whether the browser shows an error for an attempt answered ``status``."""
    return status == 0 or status >= 500


@functools.lru_cache(maxsize=64)
def _result_json(method: str, outcome: str) -> bytes:
    return orjson.dumps({"method": method, "outcome": outcome})


def _payment_error(method: str, status: int, ts: float) -> bytes:
    return orjson.dumps(
        {
            "type": PAYMENT_ERROR,
            "value": f"checkout attempt failed with HTTP {status}"
            if status
            else "checkout attempt failed: network error",
            "timestamp": iso_timestamp(ts),
            "context": {"method": method, "status": str(status), "screen": "checkout"},
        }
    )


__all__ = [
    "PAYMENT_CLICK",
    "PAYMENT_ERROR",
    "Payment",
    "Purchase",
    "RetryPolicy",
    "ShopperModel",
    "abandon",
    "add_to_cart",
    "attempt_failed",
    "click_payment",
    "declines",
    "failed_attempt",
    "js_error",
    "normalise_mix",
    "payment_result",
    "plan_methods",
    "pools_for",
    "shopper_model",
    "visit",
]
