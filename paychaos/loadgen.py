"""A small, fast, bounded checkout driver (asyncio + aiohttp).

Locust (``locustfiles/checkout.py``) is how users drive realistic traffic;
this driver is what the quick demo, the OOM demo, the integration tests and
the stack benchmark use: a fixed number of checkouts with a method mix at a
fixed concurrency (or arrival rate), bounded in count and in time, reporting
every outcome. Its shoppers are the shared shopper model's
(:mod:`paychaos.traffic.model`: who buys what, the ledger line) and its
requests go through the target's checkout adapter (paychaos' own API by
default); it sends each checkout once (no retries: it counts what the API
answered) and keeps no RUM. At an arrival rate (``--rate``), a checkout's
latency counts from when it was due, so a stack that falls behind shows it.

Example::

    result = asyncio.run(drive("http://127.0.0.1:8000", total=400, concurrency=32))
    print(result.by_method_status, result.successes("visa"))
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

from paychaos.contracts.domain import DEFAULT_MIX
from paychaos.contracts.errors import InvalidInput
from paychaos.contracts.target import Checkout
from paychaos.stack.service import is_loopback
from paychaos.traffic.adapter import CheckoutClient
from paychaos.traffic.model import Payment, RetryPolicy, shopper_model

__all__ = ["LoadResult", "drive", "main"]

_ONCE = RetryPolicy(max_attempts=1)


POOL_SIZE = 4096


@dataclass
class LoadResult:
    """What the driver saw: status codes per method and latencies."""

    sent: int = 0
    duration_s: float = 0.0
    by_method_status: Counter[tuple[str, int]] = field(default_factory=Counter)
    by_method_outcome: Counter[tuple[str, str]] = field(default_factory=Counter)
    """``(method, verdict)``: the adapter's reading of each answer (charged, declined, ...)."""
    latencies_ms: list[float] = field(default_factory=list)
    transport_errors: int = 0
    keys: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def rate_per_s(self) -> float:
        return self.sent / self.duration_s if self.duration_s else 0.0

    def successes(self, method: str) -> int:
        """Checkouts of ``method`` the API charged (by the adapter's outcome rules)."""
        return self.by_method_outcome[(method, "charged")]

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
    checkout: Checkout | None = None,
    ledger: Path | None = None,
) -> LoadResult:
    """Send ``total`` checkouts (bounded by ``max_duration_s``) and tally the answers.

    ``checkout``: the target's checkout API and adapter (default: paychaos' own API at
    ``api_url``). ``ledger``: a client ledger file to append each checkout's line to.
    Load goes to loopback only, unless ``allow_hosts`` (a target's explicit allow-list)
    names the host. The method split is exact over the first ``min(total, 4096)``
    checkouts and cycles after that.
    """
    checkout = checkout or Checkout(url=api_url)
    host = aiohttp.client.URL(checkout.url).host or ""
    if not is_loopback(host) and host not in allow_hosts:
        raise InvalidInput(
            f"{checkout.url} is not loopback; load goes to loopback only unless the target's "
            f"allow_hosts lists {host}"
        )
    if total < 1 or concurrency < 1:
        raise InvalidInput("total and concurrency must be at least 1")
    if rate_per_s is not None and rate_per_s <= 0:
        raise InvalidInput(f"rate_per_s must be positive, got {rate_per_s}")
    client = CheckoutClient(checkout)
    rng = random.Random(seed)
    shoppers = shopper_model(mix, seed)
    plan = shoppers.plan(min(total, POOL_SIZE), rng)
    result = LoadResult()
    deadline = time.monotonic() + max_duration_s
    run_tag = uuid.uuid4().hex[:8]
    counter = iter(range(total))
    fh = ledger.open("ab") if ledger is not None else None

    # Open model when ``rate_per_s`` is set: checkout ``i`` is due at ``start + i / rate``
    # whatever the answers' speed (``concurrency`` then caps what can be in flight).
    first_due = time.monotonic()

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            i = next(counter, None)
            if i is None:
                return
            late_s = 0.0
            if rate_per_s:
                delay = first_due + i / rate_per_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    late_s = -delay
                if time.monotonic() >= deadline:
                    return
            method = plan[i % len(plan)]
            payment = Payment(
                client, shoppers.purchase(rng, method).cart(f"load-{run_tag}-{i}"), _ONCE
            )
            req = payment.request
            # Open model: the latency counts from when the checkout was due, so a stack
            # that falls behind shows it (no coordinated omission).
            start = time.perf_counter() - late_s
            try:
                async with session.request(
                    req.method, req.url, data=req.body, headers=req.headers
                ) as resp:
                    body = await resp.read()
                    code = resp.status
            except (aiohttp.ClientError, TimeoutError):
                result.transport_errors += 1
                code, body = 0, b""
            latency_ms = (time.perf_counter() - start) * 1000
            verdict = payment.answer(code, body)
            result.latencies_ms.append(latency_ms)
            result.by_method_status[(method, code)] += 1
            result.by_method_outcome[(method, verdict)] += 1
            result.keys.append((payment.cart.key, method, code))
            result.sent += 1
            if fh is not None:
                fh.write(
                    orjson.dumps(
                        payment.ledger_entry(time.time(), latency_ms),
                        option=orjson.OPT_APPEND_NEWLINE,
                    )
                )

    timeout = aiohttp.ClientTimeout(total=request_timeout_s)
    connector = aiohttp.TCPConnector(limit=concurrency)
    started = time.perf_counter()
    try:
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    finally:
        if fh is not None:
            fh.close()
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
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="open model: checkouts per second, due on a fixed schedule whatever the answers' "
        "speed (latency counts from when each was due); --concurrency caps what is in flight",
    )
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(
            drive(
                args.url,
                total=args.total,
                concurrency=args.concurrency,
                max_duration_s=args.duration_s,
                seed=args.seed,
                rate_per_s=args.rate,
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
