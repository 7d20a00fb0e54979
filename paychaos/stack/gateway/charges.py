"""Parsing a ``POST /v1/charges`` request into a typed :class:`ChargeRequest`.

Validation is hand-written (no model library on the hot path) and raises
:class:`InvalidRequest` naming the offending field, e.g. ``source.card_token``.
The request's :attr:`ChargeRequest.fingerprint` is a digest of its parameters:
the idempotency check compares fingerprints, so no card token is ever kept.

Magic test values, like Stripe's test cards:

- ``card_token`` ``tok_decline`` -> declined ``do_not_honor``
- ``card_token`` ``tok_insufficient_funds`` -> declined ``insufficient_funds``
- ``card_token`` ``tok_expired_card`` -> declined ``expired_card``
- PayPal ``payer_email`` ending ``@decline.test`` -> declined ``instrument_declined``

``customer`` (optional) is the merchant's id of the paying customer, as in Stripe's
charge: the card-testing screen (:mod:`.screen`) counts distinct cards per customer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from paychaos.contracts.messages import json_error

from .profiles import CARD_METHODS, METHODS

MAX_AMOUNT_CENTS = 100_000_000  # one million in major units
MAX_KEY_CHARS = 255
CRYPTO_NETWORKS = frozenset({"ethereum", "bitcoin", "solana", "polygon"})

MAGIC_CARD_DECLINES = {
    "tok_decline": "do_not_honor",
    "tok_insufficient_funds": "insufficient_funds",
    "tok_expired_card": "expired_card",
}
PAYPAL_DECLINE_SUFFIX = "@decline.test"


class InvalidRequest(ValueError):
    """A client error; ``param`` names the field, ``status`` is the HTTP status."""

    def __init__(self, param: str | None, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.param = param
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """A validated charge request. ``secret`` (token/email/wallet) is never logged."""

    amount_cents: int
    currency: str
    method: str
    payment_id: str
    description: str | None
    secret: str
    last4: str | None
    network: str | None
    fingerprint: str
    customer: str | None = None

    @property
    def magic_decline(self) -> str | None:
        """The decline code forced by a magic test token, if any."""
        if self.method in CARD_METHODS:
            return MAGIC_CARD_DECLINES.get(self.secret)
        if self.method == "paypal" and self.secret.lower().endswith(PAYPAL_DECLINE_SUFFIX):
            return "instrument_declined"
        return None


def validate_idempotency_key(value: str | None) -> str:
    if value is None or value == "":
        raise InvalidRequest("Idempotency-Key", "the Idempotency-Key header is required")
    if len(value) > MAX_KEY_CHARS:
        raise InvalidRequest(
            "Idempotency-Key", f"the Idempotency-Key header must be 1-{MAX_KEY_CHARS} characters"
        )
    return value


def _string(
    obj: dict[str, Any], name: str, param: str, *, required: bool = True, max_len: int = 255
) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise InvalidRequest(param, f"{param} is required")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(param, f"{param} must be a string")
    if not value or len(value) > max_len:
        raise InvalidRequest(param, f"{param} must be 1-{max_len} characters")
    return value


def parse_charge(body: bytes) -> ChargeRequest:
    """Parse and validate a JSON charge body; raises :class:`InvalidRequest`."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("body", f"the request body is not JSON: {json_error(exc)}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body", "the request body must be a JSON object")
    unknown = set(data) - {
        "amount_cents",
        "currency",
        "method",
        "source",
        "payment_id",
        "description",
        "customer",
    }
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequest(name, f"unknown field {name!r}")

    amount = data.get("amount_cents")
    if amount is None:
        raise InvalidRequest("amount_cents", "amount_cents is required")
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidRequest("amount_cents", "amount_cents must be an integer number of cents")
    if not 1 <= amount <= MAX_AMOUNT_CENTS:
        raise InvalidRequest("amount_cents", f"amount_cents must be 1-{MAX_AMOUNT_CENTS}")

    currency = _string(data, "currency", "currency", max_len=3)
    assert currency is not None
    if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        raise InvalidRequest("currency", "currency must be a 3-letter ISO 4217 code")
    currency = currency.upper()

    method = _string(data, "method", "method", max_len=32)
    if method not in METHODS:
        raise InvalidRequest("method", f"method must be one of {', '.join(METHODS)}")

    payment_id = _string(data, "payment_id", "payment_id")
    assert payment_id is not None
    description = _string(data, "description", "description", required=False, max_len=1000)
    customer = _string(data, "customer", "customer", required=False, max_len=64)

    source = data.get("source")
    if source is None:
        raise InvalidRequest("source", "source is required")
    if not isinstance(source, dict):
        raise InvalidRequest("source", "source must be a JSON object")
    secret, last4, network = _parse_source(method, source)

    digest = hashlib.blake2b(
        orjson.dumps(
            [amount, currency, method, payment_id, description, secret, last4, network, customer]
        ),
        digest_size=16,
    ).hexdigest()
    return ChargeRequest(
        amount, currency, method, payment_id, description, secret, last4, network, digest, customer
    )


def _parse_source(method: str, source: dict[str, Any]) -> tuple[str, str | None, str | None]:
    if method in CARD_METHODS:
        allowed = {"card_token", "last4", "brand", "exp_month", "exp_year"}
        token = _string(source, "card_token", "source.card_token")
        assert token is not None
        last4 = _string(source, "last4", "source.last4", required=False, max_len=4)
        if last4 is not None and (len(last4) != 4 or not last4.isdigit()):
            raise InvalidRequest("source.last4", "source.last4 must be 4 digits")
        if token.isdigit() and len(token) >= 12:
            raise InvalidRequest(
                "source.card_token", "source.card_token must be a token, never a card number"
            )
        _reject_unknown(source, allowed)
        return token, last4, None
    if method == "paypal":
        email = _string(source, "payer_email", "source.payer_email", max_len=254)
        assert email is not None
        if "@" not in email.strip("@"):
            raise InvalidRequest(
                "source.payer_email", "source.payer_email must be an email address"
            )
        _reject_unknown(source, {"payer_email", "payer_id"})
        return email, None, None
    wallet = _string(source, "wallet", "source.wallet", max_len=128)
    assert wallet is not None
    network = _string(source, "network", "source.network", required=False, max_len=32)
    if network is not None and network not in CRYPTO_NETWORKS:
        raise InvalidRequest(
            "source.network", f"source.network must be one of {', '.join(sorted(CRYPTO_NETWORKS))}"
        )
    _reject_unknown(source, {"wallet", "network"})
    return wallet, None, network or "ethereum"


def _reject_unknown(source: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(source) - allowed
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequest(f"source.{name}", f"unknown field 'source.{name}' for this method")
