"""The checkout request and the payment resource, validated at the edge.

A checkout body looks like::

    {
      "order_id": "ord_8f2c",
      "customer": {"id": "cus_42", "email": "ana@example.com", "name": "Ana Diaz"},
      "items": [{"sku": "SKU-1", "name": "Mug", "quantity": 2, "unit_price": "9.50"}],
      "amount": "19.00",
      "currency": "USD",
      "method": "visa",
      "payment": {"card_token": "tok_visa_1a2b", "last4": "4242"}
    }

``payment`` depends on ``method``: cards (visa, amex) carry a token and the
last four digits (never a card number); paypal carries ``payer_email``; crypto
carries ``wallet`` and ``network``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from paychaos.contracts.domain import Method
from paychaos.stack.telemetry import contains_pan

CARD_METHODS = frozenset({"visa", "amex"})
CURRENCIES = frozenset({"USD", "EUR", "GBP", "CAD", "AUD", "JPY", "MXN", "BRL"})
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_\-:.]{8,255}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[A-Za-z]{2,}$")
MAX_BODY_BYTES = 64 * 1024


def _money_schema(maximum: str) -> dict[str, Any]:
    """What the OpenAPI document says of an amount: what the validators below accept."""
    digits = len(maximum) - 1
    pattern = rf"^(?=.*[1-9])([0-9]{{1,{digits}}}(\.[0-9]{{1,2}})?|{maximum}(\.0{{1,2}})?)$"
    return {
        "anyOf": [
            {"type": "string", "pattern": pattern},
            {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": float(maximum),
                "multipleOf": 0.01,
            },
        ],
        "description": f"a decimal with at most 2 places, above 0 and at most {maximum}",
    }


_EMAIL_SCHEMA = WithJsonSchema(
    {"type": "string", "maxLength": 320, "pattern": _EMAIL.pattern, "format": "email"}
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Customer(_Strict):
    id: str = Field(min_length=1, max_length=64)
    email: Annotated[str, _EMAIL_SCHEMA] = Field(max_length=320)
    name: str | None = Field(default=None, max_length=200)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("must be an email address")
        return value


class Item(_Strict):
    sku: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=200)
    quantity: int = Field(ge=1, le=100)
    unit_price: Annotated[Decimal, WithJsonSchema(_money_schema("100000"))] = Field(
        gt=0, le=Decimal("100000"), decimal_places=2
    )


class PaymentDetails(_Strict):
    """Method-specific details; which fields are required depends on the method."""

    card_token: str | None = Field(default=None, min_length=4, max_length=128)
    last4: str | None = Field(default=None, pattern=r"^\d{4}$")
    exp_month: int | None = Field(default=None, ge=1, le=12)
    exp_year: int | None = Field(default=None, ge=2000, le=2100)
    payer_email: Annotated[str, _EMAIL_SCHEMA] | None = Field(default=None, max_length=320)
    wallet: str | None = Field(default=None, min_length=16, max_length=128)
    network: str | None = Field(default=None, max_length=32)

    @field_validator("card_token")
    @classmethod
    def _no_pan(cls, value: str | None) -> str | None:
        if value is not None and contains_pan(value):
            raise ValueError("looks like a card number; send a token, never the PAN")
        return value


class CheckoutRequest(_Strict):
    order_id: str | None = Field(default=None, max_length=64)
    customer: Customer
    items: list[Item] = Field(min_length=1, max_length=50)
    amount: Annotated[Decimal, WithJsonSchema(_money_schema("1000000"))] = Field(
        gt=0, le=Decimal("1000000"), decimal_places=2
    )
    currency: Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(CURRENCIES)})] = (
        Field(pattern=r"^[A-Z]{3}$")
    )
    method: Method
    payment: PaymentDetails

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if value not in CURRENCIES:
            raise ValueError(f"unsupported currency; one of {', '.join(sorted(CURRENCIES))}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CheckoutRequest:
        total = sum((item.unit_price * item.quantity for item in self.items), Decimal(0))
        if total != self.amount:
            raise ValueError(f"amount {self.amount} does not equal the items' total {total}")
        details = self.payment
        if self.method in CARD_METHODS:
            if not details.card_token or not details.last4:
                raise ValueError(f"method {self.method} needs payment.card_token and payment.last4")
        elif self.method == "paypal":
            if not details.payer_email or not _EMAIL.match(details.payer_email):
                raise ValueError("method paypal needs payment.payer_email (an email address)")
        elif self.method == "crypto" and not details.wallet:
            raise ValueError("method crypto needs payment.wallet")
        return self

    @property
    def amount_cents(self) -> int:
        return int(self.amount * 100)

    def gateway_source(self) -> dict[str, str]:
        """The ``source`` object sent to the gateway (tokens only, never a PAN)."""
        details = self.payment
        if self.method in CARD_METHODS:
            return {"card_token": details.card_token or "", "last4": details.last4 or ""}
        if self.method == "paypal":
            return {"payer_email": details.payer_email or ""}
        return {"wallet": details.wallet or "", "network": details.network or "ethereum"}


PaymentStatus = Literal["pending", "succeeded", "declined", "unknown", "failed"]


class Payment(BaseModel):
    """The payment resource the API answers with."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: PaymentStatus
    method: Method
    amount: str
    currency: str
    idempotency_key: str
    order_id: str | None = None
    gateway_charge_id: str | None = None
    decline_code: str | None = None
    card_last4: str | None = None
    created_at: str
    updated_at: str
