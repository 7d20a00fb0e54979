"""Throughput of the gateway simulator at ``--latency-scale 0``.

Starts ``python -m paychaos.stack.gateway`` as a subprocess on a free loopback port,
then drives it from a second process with a bounded aiohttp load (fixed
concurrency, fixed duration, a request cap) and prints req/s and p50/p99.

    .venv/bin/python bench/bench_gateway.py [--duration-s 5] [--concurrency 64] [--tracing]

Not a test: it prints figures and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIX = ("visa",) * 6 + ("paypal",) * 2 + ("amex", "crypto")
SOURCES = {
    "visa": {"card_token": "tok_visa_bench", "last4": "4242"},
    "amex": {"card_token": "tok_amex_bench", "last4": "0005"},
    "paypal": {"payer_email": "bench@example.com"},
    "crypto": {"wallet": "0xbench", "network": "ethereum"},
}


async def drive(port: int, duration_s: float, concurrency: int, max_requests: int) -> dict:
    import aiohttp
    import orjson

    url = f"http://127.0.0.1:{port}/v1/charges"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + duration_s
    issued = 0

    async def worker(session: aiohttp.ClientSession, worker_id: int) -> None:
        nonlocal issued
        n = 0
        while time.monotonic() < deadline and issued < max_requests:
            issued += 1
            n += 1
            method = MIX[(worker_id + n) % len(MIX)]
            body = orjson.dumps(
                {
                    "amount_cents": 1999,
                    "currency": "USD",
                    "method": method,
                    "source": SOURCES[method],
                    "payment_id": str(uuid.uuid4()),
                }
            )
            headers = {"Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
            statuses[response.status] = statuses.get(response.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=10)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session, i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "elapsed_s": round(elapsed, 2),
        "req_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(pct(0.50), 2),
        "p99_ms": round(pct(0.99), 2),
        "statuses": statuses,
    }


def wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gateway exited with {proc.returncode}")
        url = f"http://127.0.0.1:{port}/healthz"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as r:
            if r.status == 200:
                return
        time.sleep(0.05)
    raise SystemExit("gateway not healthy within 20 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument(
        "--tracing", action="store_true", help="export spans to a dead OTLP endpoint"
    )
    parser.add_argument("--drive-port", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.drive_port is not None:  # the load-generator child process
        result = asyncio.run(
            drive(args.drive_port, args.duration_s, args.concurrency, args.max_requests)
        )
        print(json.dumps(result))
        return 0

    sys.path.insert(0, str(REPO))
    from paychaos.stack.service import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    if args.tracing:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    argv = [
        sys.executable,
        "-m",
        "paychaos.stack.gateway",
        "--port",
        str(port),
        "--latency-scale",
        "0",
    ]
    gateway = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_healthy(port, gateway)
        load = subprocess.run(
            [
                sys.executable,
                __file__,
                "--drive-port",
                str(port),
                "--duration-s",
                str(args.duration_s),
                "--concurrency",
                str(args.concurrency),
                "--max-requests",
                str(args.max_requests),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=args.duration_s + 60,
            check=True,
        )
        result = json.loads(load.stdout)
        mode = "tracing on (OTLP to a closed port)" if args.tracing else "tracing off"
        print(
            f"gateway --latency-scale 0, {mode}, concurrency {args.concurrency}: "
            f"{result['requests']} requests in {result['elapsed_s']} s = "
            f"{result['req_per_s']} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
            f"statuses {result['statuses']}"
        )
    finally:
        if gateway.poll() is None:
            os.kill(gateway.pid, signal.SIGTERM)
            try:
                gateway.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(gateway.pid, signal.SIGKILL)
                gateway.wait(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
