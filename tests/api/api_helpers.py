"""Small HTTP helpers for tests that talk to the running stack (stdlib only)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def http(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout_s: float = 10.0,
) -> tuple[int, dict[str, str], Any]:
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            raw, status, hdrs = resp.read(), resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        raw, status, hdrs = exc.read(), exc.code, dict(exc.headers)
        exc.close()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw.decode(errors="replace")
    return status, hdrs, payload


def checkout_body(method: str = "visa", **payment: str) -> dict[str, Any]:
    details: dict[str, Any] = {
        "visa": {"card_token": "tok_visa_test", "last4": "4242"},
        "amex": {"card_token": "tok_amex_test", "last4": "0005"},
        "paypal": {"payer_email": "buyer@example.com"},
        "crypto": {"wallet": "0x" + "ab" * 20, "network": "ethereum"},
    }[method]
    details.update(payment)
    return {
        "order_id": "ord_" + uuid.uuid4().hex[:8],
        "customer": {"id": "cus_1", "email": "ana@example.com", "name": "Ana"},
        "items": [{"sku": "MUG", "name": "Mug", "quantity": 2, "unit_price": "9.50"}],
        "amount": "19.00",
        "currency": "USD",
        "method": method,
        "payment": details,
    }


def new_key() -> str:
    return "test-" + uuid.uuid4().hex


def eventually(
    fetch: Callable[[], T], ok: Callable[[T], bool], timeout_s: float = 20.0, poll_s: float = 0.25
) -> T:
    """Poll ``fetch`` until ``ok`` holds; return the last value (bounded by ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    value = fetch()
    while not ok(value) and time.monotonic() < deadline:
        time.sleep(poll_s)
        value = fetch()
    return value
