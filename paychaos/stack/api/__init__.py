"""The reference payment API (stands for the seed's NestJS backend)."""

from __future__ import annotations

from paychaos.contracts.domain import METHODS
from paychaos.stack.api.app import ApiSettings, create_app
from paychaos.stack.api.models import CheckoutRequest, Payment

__all__ = ["METHODS", "ApiSettings", "CheckoutRequest", "Payment", "create_app"]
