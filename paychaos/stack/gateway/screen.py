"""The processor's card-testing screen: too many distinct cards from one customer.

Card testing (a fraudster checking which stolen or generated card numbers work)
shows as one customer trying many different cards in a short time, usually for
small amounts. Real processors decline those charges (Stripe answers
``card_velocity_exceeded``); this screen does the same, from what the charge
request says: the ``customer`` it names and a fingerprint of its card token.

A customer who has tried more than ``max_cards`` distinct cards in the last
``window_s`` seconds (this charge's card included) is declined, whatever card
it uses, until enough of those attempts age out of the window. Charges that name
no customer, and non-card methods, are not screened.

Only a short digest of the token is kept (never the token, and the token is
never a card number). Memory is bounded: at most ``max_customers`` customers are
tracked (the oldest forgotten first) and each keeps at most ``max_cards + 1``
fingerprints.

Normal shoppers never come near the limit: the simulated shoppers' pools give a
customer at most five cards over a whole run.

Example::

    screen = CardTestingScreen(max_cards=10, window_s=60)
    screen.decline_code("cus_42", "tok_visa_0a1b2c3d4e5f", now=0.0)   # None
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

DECLINE_CODE = "card_velocity_exceeded"
MAX_CARDS = 10
WINDOW_S = 60.0
MAX_CUSTOMERS = 100_000


class CardTestingScreen:
    """Per customer, the distinct card fingerprints seen in the window (last seen time)."""

    def __init__(
        self,
        *,
        max_cards: int = MAX_CARDS,
        window_s: float = WINDOW_S,
        max_customers: int = MAX_CUSTOMERS,
    ) -> None:
        if max_cards < 1 or window_s <= 0 or max_customers < 1:
            raise ValueError("max_cards, window_s and max_customers must be positive")
        self.max_cards, self.window_s, self.max_customers = max_cards, window_s, max_customers
        self._seen: OrderedDict[str, dict[str, float]] = OrderedDict()
        self.declined = 0

    @staticmethod
    def fingerprint(card_token: str) -> str:
        return hashlib.blake2b(card_token.encode(), digest_size=8).hexdigest()

    def decline_code(self, customer: str | None, card_token: str, *, now: float) -> str | None:
        """Record this attempt; ``card_velocity_exceeded`` when the customer is over the limit."""
        if not customer:
            return None
        cards = self._seen.pop(customer, None) or {}
        horizon = now - self.window_s
        cards = {fp: at for fp, at in cards.items() if at >= horizon}
        cards[self.fingerprint(card_token)] = now
        over = len(cards) > self.max_cards
        if len(cards) > self.max_cards + 1:  # keep the newest max_cards + 1: still over
            newest = sorted(cards.items(), key=lambda item: item[1])[-(self.max_cards + 1) :]
            cards = dict(newest)
        self._seen[customer] = cards  # most recently seen last
        while len(self._seen) > self.max_customers:
            self._seen.popitem(last=False)
        if over:
            self.declined += 1
            return DECLINE_CODE
        return None
