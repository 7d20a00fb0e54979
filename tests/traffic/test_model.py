"""The shopper model every driver shares: who buys what, retries, RUM, the ledger line."""

from __future__ import annotations

import random
from collections import Counter

import orjson
import pytest

from paychaos import loadgen
from paychaos.contracts.domain import DEFAULT_MIX, METHODS
from paychaos.contracts.errors import InvalidInput
from paychaos.contracts.target import Checkout
from paychaos.stack.api.models import CheckoutRequest
from paychaos.stack.collector.faro import FaroPayload, rum_items
from paychaos.traffic import model
from paychaos.traffic.adapter import CheckoutClient, cents
from paychaos.traffic.catalog import DECLINE_TOKENS
from paychaos.traffic.model import (
    Payment,
    RetryPolicy,
    ShopperModel,
    plan_methods,
    shopper_model,
)

CLIENT = CheckoutClient(Checkout(url="http://127.0.0.1:9"), environ={})


@pytest.fixture(scope="module")
def shoppers() -> ShopperModel:
    return ShopperModel(seed=3, decline_rate=0.1, pool_size=64, declined_size=16)


def test_the_default_mix_is_the_domain_s() -> None:
    assert ShopperModel(seed=1, pool_size=2).mix == pytest.approx(
        {m: s / 100 for m, s in DEFAULT_MIX.items()}
    )


def test_methods_follow_the_mix(shoppers: ShopperModel) -> None:
    rng = random.Random(1)
    drawn = Counter(shoppers.purchase(rng).method for _ in range(20_000))
    for method in METHODS:
        assert drawn[method] / 20_000 == pytest.approx(DEFAULT_MIX[method] / 100, abs=0.015)
    plan = plan_methods(1000, {"visa": 3, "amex": 1}, rng)
    assert Counter(plan) == {"visa": 750, "amex": 250}
    with pytest.raises(InvalidInput, match="unknown payment method 'cash'"):
        ShopperModel({"cash": 1.0}, pool_size=1)
    with pytest.raises(InvalidInput, match="positive shares"):
        plan_methods(10, {"visa": 0.0}, rng)


def test_a_purchase_is_a_valid_checkout_of_its_method(shoppers: ShopperModel) -> None:
    rng = random.Random(2)
    for i in range(200):
        method = METHODS[i % 4]
        purchase = shoppers.purchase(rng, method)
        cart = purchase.cart(f"chk-model-{i}")
        assert cart.method == method and cart.order_id == f"ord_chk-model-{i}"
        assert cart.amount_cents == sum(cents(x["unit_price"]) * x["quantity"] for x in cart.items)
        assert purchase.cart_value == cart.amount
        sent = CheckoutRequest.model_validate_json(CLIENT.request(cart).body)
        assert sent.amount_cents == cart.amount_cents and sent.method == method
        assert orjson.loads(CLIENT.request(cart).body) == cart.builtin_body()


def test_card_payments_decline_at_the_decline_rate() -> None:
    rng = random.Random(4)
    declining = ShopperModel(seed=4, decline_rate=0.25, pool_size=32, declined_size=8)
    cards = [declining.purchase(rng, "visa") for _ in range(4000)]
    share = sum(model.declines(p) for p in cards) / len(cards)
    assert share == pytest.approx(0.25, abs=0.03)
    assert all(p.payment["card_token"] in DECLINE_TOKENS for p in cards if model.declines(p))
    assert not any(model.declines(declining.purchase(rng, "paypal")) for _ in range(200))
    never = ShopperModel(seed=4, pool_size=32)
    assert not any(model.declines(never.purchase(rng, "visa")) for _ in range(500))


def test_retry_policy_retries_retry_and_unknown_with_bounded_backoff() -> None:
    policy = RetryPolicy(max_attempts=3, base_s=0.25, cap_s=0.6)
    assert policy.retries("retry", 1) and policy.retries("unknown", 2)
    assert not policy.retries("retry", 3)  # bounded
    for verdict in ("charged", "declined", "invalid"):
        assert not policy.retries(verdict, 1)
    rng = random.Random(5)
    for attempts, nominal in ((1, 0.25), (2, 0.5), (3, 0.6), (9, 0.6)):
        pauses = [policy.backoff_s(attempts, rng) for _ in range(200)]
        assert min(pauses) >= nominal * 0.5 and max(pauses) <= nominal * 1.5
    with pytest.raises(InvalidInput):
        RetryPolicy(max_attempts=0)


def test_a_payment_keeps_its_key_and_writes_the_ledger_line(shoppers: ShopperModel) -> None:
    cart = shoppers.purchase(random.Random(6), "amex").cart("chk-pay-1")
    payment = Payment(CLIENT, cart, RetryPolicy(max_attempts=3))
    first = payment.request
    assert payment.answer(503, b'{"type":"x","payment_id":"p-1"}') == "retry"
    assert not payment.done and payment.request is first  # sent again as is: same key
    assert payment.answer(0, b"") == "unknown" and not payment.done
    assert payment.answer(201, b'{"id":"p-1","status":"succeeded"}') == "charged"
    assert payment.done and payment.final
    entry = payment.ledger_entry(1.0, 12.34, "t" * 32)
    assert (entry.key, entry.method, entry.amount_cents, entry.currency) == (
        "chk-pay-1",
        "amex",
        cart.amount_cents,
        cart.currency,
    )
    assert (entry.attempts, entry.outcome, entry.status, entry.payment_id) == (
        3,
        "succeeded",
        201,
        "p-1",
    )
    assert entry.trace_id == "t" * 32 and entry.latency_ms == 12.3
    gave_up = Payment(CLIENT, cart, RetryPolicy(max_attempts=2))
    gave_up.answer(502, b"")
    gave_up.answer(504, b"")
    assert gave_up.done and not gave_up.final and gave_up.outcome == "unknown"


def test_a_visit_s_rum_is_faro_with_the_seed_s_events(shoppers: ShopperModel) -> None:
    rng = random.Random(7)
    purchase = shoppers.purchase(rng, "crypto")
    journey = model.visit(rng, purchase, "s-1")
    journey.page_view(rng, "checkout")
    model.click_payment(journey, purchase, trace=("a" * 32, "b" * 16))
    model.attempt_failed(journey, "crypto", 503)
    model.attempt_failed(journey, "crypto", 0)
    model.payment_result(journey, rng, "crypto", "succeeded")
    items = rum_items(FaroPayload.model_validate_json(journey.payload()))
    clicks = [i for i in items if i.kind == "event" and i.name == model.PAYMENT_CLICK]
    assert len(clicks) == 1
    assert clicks[0].attributes["method"] == "crypto"
    assert clicks[0].attributes["cart_value"] == purchase.cart_value
    errors = [i for i in items if i.kind == "exception"]
    assert [e.name for e in errors] == [model.PAYMENT_ERROR] * 2
    assert [e.attributes["status"] for e in errors] == ["503", "0"]
    assert all(e.attributes["method"] == "crypto" for e in errors)
    vitals = {i.name for i in items if i.kind == "measurement"}
    assert {"LCP", "CLS"} <= vitals
    results = [i for i in items if i.kind == "event" and i.name == model.PAYMENT_RESULT]
    assert results[0].attributes == {"method": "crypto", "outcome": "succeeded"} | {
        k: v for k, v in results[0].attributes.items() if k.startswith("event.")
    }
    assert journey.page_url.endswith("/confirmation")
    assert model.failed_attempt(0) and model.failed_attempt(503) and not model.failed_attempt(402)


def test_js_error_and_abandonment() -> None:
    rng = random.Random(8)
    shoppers = shopper_model(seed=8)
    purchase = shoppers.purchase(rng, "visa")
    journey = model.visit(rng, purchase, "s-2")
    model.add_to_cart(journey, purchase)
    model.abandon(journey, purchase)
    model.js_error(journey, rng, purchase)
    items = rum_items(FaroPayload.model_validate_json(journey.payload()))
    names = [i.name for i in items if i.kind == "event"]
    assert names == ["add_to_cart", "cart_abandoned", model.PAYMENT_CLICK]
    (exc,) = [i for i in items if i.kind == "exception"]
    assert exc.attributes["method"] == "visa" and exc.attributes["screen"] == "checkout"


def test_the_shared_model_is_built_once_per_mix_and_seed() -> None:
    assert shopper_model(seed=9) is shopper_model(seed=9)
    assert shopper_model({"visa": 1.0}, seed=9) is not shopper_model(seed=9)


def test_no_driver_keeps_its_own_body_builder() -> None:
    """The old copies are gone: loadgen builds no body, plans no mix of its own."""
    for name in ("checkout_body", "plan_methods", "_CARD_LAST4"):
        assert not hasattr(loadgen, name), name
    assert loadgen.DEFAULT_MIX is DEFAULT_MIX  # the domain's, not a copy
    from paychaos.traffic import catalog

    for name in ("BodyPool", "CheckoutDraft"):
        assert not hasattr(catalog, name), name
    assert not hasattr(catalog.ShopperPools, "checkout_body")
