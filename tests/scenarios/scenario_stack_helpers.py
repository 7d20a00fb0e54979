"""Helpers for the runner tests that talk to a real stack."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tests.live_stack import LiveStack as StackHandle


def gateway_admin(handle: StackHandle, method: str, path: str, body: object = None) -> Any:
    """Call the gateway's admin API (bearer token)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(handle.urls["gateway"] + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {handle.admin_token}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=5) as resp:
        raw = resp.read()
    return json.loads(raw) if raw.strip() else None


def post_status(url: str, body: object, key: str) -> int:
    """POST ``body`` as JSON with an ``Idempotency-Key``; the answer's status (4xx/5xx too)."""
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Idempotency-Key": key, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:  # e.g. 402 declined
        exc.close()
        return int(exc.code)


def charge(handle: StackHandle, key: str, payment_id: str) -> int:
    """One charge straight at the gateway (what a retrying client would send)."""
    body = {
        "amount_cents": 1999,
        "currency": "USD",
        "method": "visa",
        "payment_id": payment_id,
        "source": {"card_token": "tok_visa_ok", "last4": "4242"},
    }
    return post_status(handle.urls["gateway"] + "/v1/charges", body, key)


def charge_until_succeeded(handle: StackHandle, key: str, payment_id: str, tries: int = 30) -> bool:
    """Charge (same key) until one succeeds; bounded. True when one did."""
    return any(charge(handle, key, payment_id) in (200, 201) for _ in range(tries))


def toxics(handle: StackHandle) -> list[Any]:
    with urllib.request.urlopen(handle.urls["proxy"] + "/proxies/postgres/toxics", timeout=5) as r:
        data = json.loads(r.read())
    return list(data)
