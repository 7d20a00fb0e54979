"""A card tester: one customer paying small amounts with card after card.

Card testing is a fraudster checking which stolen or generated card numbers
work: many small payments from one account, each with another card. The
:class:`CardTester` is that actor for the traffic drivers: a customer drawn
from the shoppers' own pool (an account taken over, hidden among the others),
a list of card numbers it rotates through, and the cheapest product of the
catalogue as its purchase.

The card numbers are generated in the networks' *test* ranges (``400000…`` for
visa, ``370000…`` for amex, like the processors' published test cards) and are
Luhn-valid, so they look like real ones to a validator; they never leave the
simulated browser: the API gets a token and the last four digits, exactly as
for every shopper (:func:`paychaos.traffic.catalog.card_token`).

Example::

    tester = CardTester(pools_for(7), random.Random(), method="visa", cards=40)
    tester.customer_id            # e.g. "cus_3f9a0c11d2"
    cart = tester.cart(0, "chk-ct-0")    # card 0 of 40, the next call card 1 ...
"""

from __future__ import annotations

import random
from typing import Any

from paychaos.traffic.adapter import Cart
from paychaos.traffic.catalog import BrowserCard, ShopperPools, money

#: The test ranges the generated numbers are in (no real card is issued there).
TEST_PREFIX = {"visa": "400000", "amex": "370000"}
PAN_LENGTH = {"visa": 16, "amex": 15}
CARD_METHODS = tuple(TEST_PREFIX)


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial + digit`` pass the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(partial)):
        digit = int(char)
        if index % 2 == 0:  # doubled: these sit at odd positions once the check digit is added
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def pan_in_test_range(method: str, serial: int) -> str:
    """The ``serial``-th number of ``method``'s test range, Luhn-valid."""
    prefix = TEST_PREFIX[method]
    body_len = PAN_LENGTH[method] - len(prefix) - 1
    body = f"{prefix}{serial % 10**body_len:0{body_len}d}"
    return body + luhn_check_digit(body)


class CardTester:
    """One customer of ``pools`` and ``cards`` test cards of ``method``, used in turn."""

    def __init__(
        self, pools: ShopperPools, rng: random.Random, *, method: str = "visa", cards: int = 40
    ) -> None:
        if method not in TEST_PREFIX:
            raise ValueError(f"method must be one of {', '.join(CARD_METHODS)}, not {method!r}")
        if cards < 1:
            raise ValueError(f"cards must be at least 1, got {cards}")
        customer = pools.customer(rng)
        self.method = method
        self.customer_id = customer.id
        self.currency = customer.currency
        self._customer = {"id": customer.id, "email": customer.email, "name": customer.name}
        first = rng.randrange(10**6)
        self.cards: list[BrowserCard] = []
        for serial in range(first, first + cards):
            self.cards.append(BrowserCard.issue(method, pan_in_test_range(method, serial), rng))
        cheapest = min(pools.products, key=lambda p: p.price_cents)
        self.amount_cents = cheapest.price_cents
        self._items: list[dict[str, Any]] = [
            {
                "sku": cheapest.sku,
                "name": cheapest.name,
                "quantity": 1,
                "unit_price": money(cheapest.price_cents),
            }
        ]

    def cart(self, attempt: int, key: str) -> Cart:
        """Attempt ``attempt``'s checkout: the next card in turn, the same small purchase."""
        card = self.cards[attempt % len(self.cards)]
        return Cart(
            key=key,
            method=self.method,
            amount_cents=self.amount_cents,
            currency=self.currency,
            customer=self._customer,
            items=self._items,
            payment={
                "card_token": card.token,
                "last4": card.last4,
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
            },
            order_id="ord_" + key,
        )
