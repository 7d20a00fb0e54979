"""Who shops and what they buy: faker pools built once, cheap draws on the hot path.

:class:`ShopperPools` pre-generates customers (name, email, address),
browser-side test cards (a Luhn-valid test PAN per network that never leaves
the simulated browser: the API gets a token and the last four digits), PayPal
emails, crypto wallets and a product catalogue. Drawing a customer, a cart or
a payment afterwards only uses :mod:`random` (no faker on the hot path); the
shopper model (:mod:`paychaos.traffic.model`) turns them into purchases::

    pools = ShopperPools.generate(seed=7)
    cart = pools.cart(rng)                 # geometric item count, lognormal prices
    payment = pools.payment(rng, "visa", decline_rate=0.02)   # tokens only
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

# Currency by the customer's country (the API accepts these).
_CURRENCY = {"US": "USD", "GB": "GBP", "CA": "CAD", "AU": "AUD", "MX": "MXN", "BR": "BRL"}
_LOCALES = {
    "US": "en_US",
    "GB": "en_GB",
    "CA": "en_CA",
    "AU": "en_AU",
    "MX": "es_MX",
    "BR": "pt_BR",
}
_COUNTRY_WEIGHTS = {"US": 55, "GB": 12, "DE": 8, "FR": 7, "CA": 7, "AU": 5, "MX": 3, "BR": 3}
_FAKER_NETWORK = {"visa": "visa", "amex": "amex"}
DECLINE_TOKENS = ("tok_decline", "tok_insufficient_funds")
CRYPTO_NETWORKS: tuple[str, ...] = ("ethereum", "bitcoin", "polygon")
CRYPTO_NETWORK_WEIGHTS: tuple[float, ...] = (70, 20, 10)


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    email: str
    city: str
    country: str
    currency: str


@dataclass(frozen=True)
class BrowserCard:
    """A card as the browser holds it. ``pan`` stays here; only ``token``/``last4`` are sent."""

    network: str
    pan: str
    token: str
    last4: str
    exp_month: int
    exp_year: int

    @classmethod
    def issue(cls, method: str, pan: str, rng: random.Random) -> BrowserCard:
        """The card ``pan`` as the browser holds it: tokenized, last four, an expiry."""
        return cls(
            network=method,
            pan=pan,
            token=card_token(method, pan),
            last4=pan[-4:],
            exp_month=rng.randint(1, 12),
            exp_year=rng.randint(2027, 2032),
        )


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price_cents: int


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int


@dataclass(frozen=True)
class Cart:
    lines: tuple[CartLine, ...]

    @property
    def value_cents(self) -> int:
        return sum(line.product.price_cents * line.quantity for line in self.lines)

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)


def money(cents: int) -> str:
    """``1950`` → ``"19.50"``."""
    return f"{cents // 100}.{cents % 100:02d}"


def card_token(network: str, pan: str) -> str:
    """What a card vault answers for a PAN: 12 hex digits, never a 13-19 digit run."""
    digest = hashlib.sha256(pan.encode()).hexdigest()[:12]
    return f"tok_{network}_{digest}"


def geometric(rng: random.Random, p: float) -> int:
    """1, 2, 3, ... with P(k) = (1-p)^(k-1) p (mean 1/p)."""
    k = 1
    while rng.random() > p:
        k += 1
    return k


class ShopperPools:
    """Pre-generated, read-only pools; draws are O(1) and never call faker."""

    def __init__(
        self,
        customers: list[Customer],
        cards: dict[str, list[BrowserCard]],
        paypal_emails: list[str],
        wallets: list[str],
        products: list[Product],
        *,
        mean_items: float = 1.8,
    ) -> None:
        if not customers or not products or not all(cards.values()):
            raise ValueError("pools must not be empty")
        self.customers = customers
        self.cards = cards
        self.paypal_emails = paypal_emails
        self.wallets = wallets
        self.products = products
        # Zipf-like popularity: a few bestsellers, a long tail.
        self._product_cum = list(accumulate(1 / (rank + 1) ** 1.1 for rank in range(len(products))))
        self._item_p = 1 / mean_items
        self._network_cum = list(accumulate(CRYPTO_NETWORK_WEIGHTS))

    @classmethod
    def generate(
        cls, seed: int | None = None, *, customers: int = 2000, products: int = 500
    ) -> ShopperPools:
        """Build the pools with faker (about 0.5 s); do it once per process, at start."""
        from faker import Faker

        rng = random.Random(seed)
        countries, cweights = zip(*_COUNTRY_WEIGHTS.items(), strict=True)
        fakers = {c: Faker(_LOCALES.get(c, "en_US")) for c in countries}
        for i, fk in enumerate(fakers.values()):
            fk.seed_instance(None if seed is None else seed + i)
        people: list[Customer] = []
        for i in range(customers):
            country = rng.choices(countries, cweights)[0]
            fk = fakers[country]
            name = fk.name()
            user = (
                "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum())[:20]
                or "shopper"
            )
            people.append(
                Customer(
                    id=f"cus_{rng.getrandbits(40):010x}",
                    name=name,
                    email=f"{user}.{i}@{fk.free_email_domain()}",
                    city=fk.city(),
                    country=country,
                    currency=_CURRENCY.get(country, "EUR"),
                )
            )
        base = fakers["US"]
        cards: dict[str, list[BrowserCard]] = {}
        for method, network in _FAKER_NETWORK.items():
            pool = []
            for _ in range(max(50, customers // 4)):
                pan = base.credit_card_number(card_type=network)
                pool.append(BrowserCard.issue(method, pan, rng))
            cards[method] = pool
        paypal = [f"pp.{p.email}" for p in people[: max(50, customers // 2)]]
        wallets = ["0x" + rng.getrandbits(160).to_bytes(20, "big").hex() for _ in range(500)]
        catalogue = [
            Product(
                sku=f"SKU-{i:05d}",
                name=base.catch_phrase()[:60],
                # lognormal prices: median ~$25, long tail of expensive items
                price_cents=max(99, min(500_000, round(rng.lognormvariate(7.8, 1.0)))),
            )
            for i in range(products)
        ]
        return cls(people, cards, paypal, wallets, catalogue)

    def customer(self, rng: random.Random) -> Customer:
        return self.customers[rng.randrange(len(self.customers))]

    def cart(self, rng: random.Random) -> Cart:
        """Geometric number of distinct products (by popularity), geometric quantities."""
        picks = rng.choices(
            self.products, cum_weights=self._product_cum, k=geometric(rng, self._item_p)
        )
        lines: dict[str, CartLine] = {}
        for product in picks:
            qty = geometric(rng, 0.8)
            prev = lines.get(product.sku)
            lines[product.sku] = CartLine(product, min(100, qty + (prev.quantity if prev else 0)))
        return Cart(tuple(lines.values()))

    def payment(self, rng: random.Random, method: str, decline_rate: float) -> dict[str, Any]:
        """The ``payment`` object of a checkout body (tokens only)."""
        if method in self.cards:
            card = self.cards[method][rng.randrange(len(self.cards[method]))]
            token = rng.choice(DECLINE_TOKENS) if rng.random() < decline_rate else card.token
            return {
                "card_token": token,
                "last4": card.last4,
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
            }
        if method == "paypal":
            return {"payer_email": self.paypal_emails[rng.randrange(len(self.paypal_emails))]}
        network = rng.choices(CRYPTO_NETWORKS, cum_weights=self._network_cum)[0]
        return {"wallet": self.wallets[rng.randrange(len(self.wallets))], "network": network}
