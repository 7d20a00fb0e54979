"""A small, fast, bounded checkout driver (asyncio + aiohttp).

Locust (``locustfiles/checkout.py``) is how users drive realistic traffic;
this driver is what the quick demo, the integration tests and the stack
benchmark use: a fixed number of checkouts with a method mix at a fixed
concurrency, bounded in count and in time, reporting every outcome.

Example::

    result = asyncio.run(drive("http://127.0.0.1:8000", total=400, concurrency=32))
    print(result.by_method_status)
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from paychaos.contracts.domain import DEFAULT_MIX
from paychaos.contracts.errors import InvalidInput
from paychaos.stack.service import is_loopback

POOL_SIZE = 4096
_CARD_LAST4 = {"visa": "4242", "amex": "0005"}


def checkout_body(rng: random.Random, method: str, index: int) -> dict[str, Any]:
    """One valid checkout body for ``method`` (tokens only, never a card number)."""
    items = []
    total_cents = 0
    for n in range(rng.randint(1, 3)):
        cents = rng.randint(199, 12999)
        qty = rng.randint(1, 3)
        total_cents += cents * qty
        items.append(
            {
                "sku": f"SKU-{rng.randint(1, 500)}",
                "quantity": qty,
                "unit_price": _money(cents),
                "name": f"item {n}",
            }
        )
    payment: dict[str, Any]
    if method in _CARD_LAST4:
        payment = {  # 12 hex digits: can never look like a 13-19 digit card number
            "card_token": f"tok_{method}_{rng.getrandbits(48):012x}",
            "last4": _CARD_LAST4[method],
            "exp_month": 12,
            "exp_year": 2030,
        }
    elif method == "paypal":
        payment = {"payer_email": f"buyer{index}@example.com"}
    else:
        payment = {"wallet": "0x" + uuid.UUID(int=rng.getrandbits(128)).hex, "network": "ethereum"}
    return {
        "order_id": f"ord_{index}",
        "customer": {"id": f"cus_{rng.randint(1, 10_000)}", "email": f"c{index}@example.com"},
        "items": items,
        "amount": _money(total_cents),
        "currency": "USD",
        "method": method,
        "payment": payment,
    }


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def plan_methods(total: int, mix: Mapping[str, float], rng: random.Random) -> list[str]:
    """``total`` checkouts split by share (largest remainder), shuffled."""
    if not mix or any(share < 0 for share in mix.values()) or sum(mix.values()) <= 0:
        raise InvalidInput(f"method mix must have positive shares, got {dict(mix)}")
    norm = sum(mix.values())
    exact = {method: total * share / norm for method, share in mix.items()}
    counts = {method: int(value) for method, value in exact.items()}
    # largest remainder: the plan has exactly ``total`` entries
    by_remainder = sorted(exact, key=lambda m: exact[m] - counts[m], reverse=True)
    for method in by_remainder[: total - sum(counts.values())]:
        counts[method] += 1
    plan = [method for method, count in counts.items() for _ in range(count)]
    rng.shuffle(plan)
    return plan


@dataclass
class LoadResult:
    """What the driver saw: status codes per method and latencies."""

    sent: int = 0
    duration_s: float = 0.0
    by_method_status: Counter[tuple[str, int]] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    transport_errors: int = 0
    keys: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def rate_per_s(self) -> float:
        return self.sent / self.duration_s if self.duration_s else 0.0

    def successes(self, method: str) -> int:
        return self.by_method_status[(method, 201)]

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(
    api_url: str,
    *,
    total: int,
    concurrency: int = 16,
    mix: Mapping[str, float] = DEFAULT_MIX,
    seed: int = 7,
    request_timeout_s: float = 10.0,
    max_duration_s: float = 300.0,
    allow_hosts: tuple[str, ...] = (),
    rate_per_s: float | None = None,
) -> LoadResult:
    """Send ``total`` checkouts (bounded by ``max_duration_s``) and tally the answers.

    Load goes to loopback only, unless ``allow_hosts`` (a target's explicit allow-list)
    names the host.
    """
    host = aiohttp.client.URL(api_url).host or ""
    if not is_loopback(host) and host not in allow_hosts:
        raise InvalidInput(
            f"{api_url} is not loopback; load goes to loopback only unless the target's "
            f"allow_hosts lists {host}"
        )
    if total < 1 or concurrency < 1:
        raise InvalidInput("total and concurrency must be at least 1")
    if rate_per_s is not None and rate_per_s <= 0:
        raise InvalidInput(f"rate_per_s must be positive, got {rate_per_s}")
    rng = random.Random(seed)
    # A pool of pre-serialised bodies, cycled: the hot path never builds JSON, and a
    # time-bounded run with a huge ``total`` costs no more memory than a short one.
    pool_size = min(total, POOL_SIZE)
    plan = plan_methods(pool_size, mix, rng)
    pool = [(m, orjson.dumps(checkout_body(rng, m, i))) for i, m in enumerate(plan)]
    result = LoadResult()
    url = api_url.rstrip("/") + "/api/checkout"
    deadline = time.monotonic() + max_duration_s
    run_tag = uuid.uuid4().hex[:8]
    counter = iter(range(total))

    # Open model when ``rate_per_s`` is set: checkout ``i`` is due at ``start + i / rate``
    # whatever the answers' speed (``concurrency`` then caps what can be in flight).
    first_due = time.monotonic()

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            i = next(counter, None)
            if i is None:
                return
            if rate_per_s:
                delay = first_due + i / rate_per_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if time.monotonic() >= deadline:
                    return
            method, body = pool[i % pool_size]
            key = f"load-{run_tag}-{i}"
            start = time.perf_counter()
            try:
                async with session.post(
                    url,
                    data=body,
                    headers={"Content-Type": "application/json", "Idempotency-Key": key},
                ) as resp:
                    await resp.read()
                    code = resp.status
            except (aiohttp.ClientError, TimeoutError):
                result.transport_errors += 1
                code = 0
            result.latencies_ms.append((time.perf_counter() - start) * 1000)
            result.by_method_status[(method, code)] += 1
            result.keys.append((key, method, code))
            result.sent += 1

    timeout = aiohttp.ClientTimeout(total=request_timeout_s)
    connector = aiohttp.TCPConnector(limit=concurrency)
    started = time.perf_counter()
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    result.duration_s = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m paychaos.loadgen --url URL --total N`` prints a JSON summary."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description="bounded checkout driver (JSON summary)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--total", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration-s", type=float, default=300.0, help="stop sending after this")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(
            drive(
                args.url,
                total=args.total,
                concurrency=args.concurrency,
                max_duration_s=args.duration_s,
                seed=args.seed,
            )
        )
    except InvalidInput as exc:
        parser.error(str(exc))
    codes: Counter[int] = Counter()
    for (_, code), n in result.by_method_status.items():
        codes[code] += n
    print(
        json.dumps(
            {
                "sent": result.sent,
                "duration_s": result.duration_s,
                "rate_per_s": result.rate_per_s,
                "p50_ms": result.percentile_ms(0.5),
                "p99_ms": result.percentile_ms(0.99),
                "codes": {str(k): v for k, v in sorted(codes.items())},
                "transport_errors": result.transport_errors,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
