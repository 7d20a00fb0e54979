"""Benchmark of the checkout adapter's hot path: building a request, reading an answer.

Run: ``PYTHONPATH=. .venv/bin/python bench/bench_adapter.py [--n 20000]`` (``PYTHONPATH=.``: this
tree's paychaos, as pytest's ``pythonpath`` does)

Prints microseconds per call for the built-in body, a foreign template
(the shape of ``tests/foreign/shop_api.py``), and ``interpret`` of a pointer
rule answer. In-process, no network; a few seconds.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from paychaos.contracts.target import Checkout, CheckoutAdapter, SecretRef
from paychaos.traffic.adapter import CheckoutClient
from paychaos.traffic.model import ShopperModel

FOREIGN = CheckoutAdapter.model_validate(
    {
        "method": "PUT",
        "path": "/v2/orders/{key}/payment",
        "headers": {"X-Api-Key": {"env": "SHOP_API_KEY"}},
        "idempotency_header": None,
        "body": {
            "total": {"cents": "{amount_cents}", "ccy": "{currency}"},
            "paymentMethod": "{method}",
            "buyer": "{customer}",
            "lines": "{items}",
            "note": "order {key}: {amount} {currency}",
        },
        "outcomes": {
            "charged": [{"status": 200, "pointer": "/state", "equals": "PAID"}],
            "declined": [{"status": 200, "pointer": "/state", "equals": "REFUSED"}],
            "invalid": [{"status": 400}, {"status": 409}],
            "retry": [{"status": 503}],
        },
        "payment_id": "/ref",
    }
)


def per_call_us(fn: Callable[[int], object], n: int) -> float:
    best = float("inf")
    for _ in range(5):  # best of 5: the least disturbed run on a shared machine
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    rng = random.Random(7)
    shoppers = ShopperModel(seed=7)  # the shopper model every driver uses
    carts = [
        shoppers.purchase(rng, m).cart(f"chk-bench-{i:06d}")
        for i, m in enumerate(["visa", "paypal", "amex", "crypto"] * 64)
    ]
    url = "http://127.0.0.1:8000"
    builtin = CheckoutClient(Checkout(url=url))
    foreign = CheckoutClient(
        Checkout(url=url, adapter=FOREIGN), {"SHOP_API_KEY": "bench-key-not-a-secret"}
    )
    answer = b'{"state":"PAID","ref":"pay_6b1f0c2a9d4e4f1a8b7c6d5e4f3a2b1c"}'
    assert isinstance(FOREIGN.headers["X-Api-Key"], SecretRef)
    k = len(carts)
    rows = [
        ("request, built-in body", lambda i: builtin.request(carts[i % k])),
        ("request, foreign template", lambda i: foreign.request(carts[i % k])),
        ("interpret, pointer rule + id", lambda i: foreign.interpret(200, answer)),
    ]
    for name, fn in rows:
        print(f"{name:32s} {per_call_us(fn, args.n):6.2f} us/call")


if __name__ == "__main__":
    main()
