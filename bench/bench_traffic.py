"""Checkout requests/s of one Locust process: the realistic shopper vs a minimal FastHttpUser.

What is counted: ``POST /api/checkout`` requests per second of one Locust
process (Locust's stats row ``/api/checkout``, from its per-second CSV
history), nothing else, over a steady-state window (after 4 s of start-up
and spawning, until 1 s before the end); and the Locust process's user+sys
CPU per checkout over the same window (``/proc``), which says what the rate
would be wherever the Locust process, not the endpoint, is the bottleneck. Both users post to the same
instant endpoint (``paychaos.traffic.fake_api``: a tiny asyncio server in
its own process that answers 201 at once), headless, one Locust process
each, ``-u`` users spawned at once. The minimal user posts a fixed body with
a fixed ``Idempotency-Key`` and nothing else.

The shopper runs with think times off (``--think-time-scale 0``: the bench
compares request rates, not shoppers), abandonment and JS errors off (so
every visit ends in a checkout), and everything else on: pooled customers,
carts and bodies, a fresh ``Idempotency-Key`` and ``order_id`` per checkout,
the ``checkout`` client span with ``traceparent`` (exported as OTLP/JSON),
one Faro RUM body per visit (page views with web vitals, cart, click, result),
the client ledger and the business stats. RUM and spans go to a second
instant server standing in for the collector (a separate process), so they
cost the Locust process what they cost and do not slow the checkout endpoint.
Their requests are not counted (they are not requests to the endpoint).
``--variants`` adds the shopper with its client span but no RUM, and the shopper
without either: what is left between them and the full shopper is what RUM
and the span cost.

Rounds alternate the users (minimal, shopper, minimal, ...) and the median of
each is reported. On a shared machine whose speed moves from one minute to the
next, that is not enough: the bench then runs each shopper **side by side**
with the minimal user (two Locust processes at once, each on its own instant
endpoint) and compares their CPU per checkout in the same window, the ratio
that holds wherever the Locust process is the bottleneck. Target:
shopper/minimal >= 0.90.

    .venv/bin/python bench/bench_traffic.py [--users 20] [--seconds 15] [--rounds 2]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from paychaos.stack.service import free_port  # noqa: E402

MINIMAL = """
from locust import FastHttpUser, constant, task

BODY = b'{"order_id":"o1","customer":{"id":"c1","email":"a@example.com"},"items":[{"sku":"S","quantity":1,"unit_price":"9.50"}],"amount":"9.50","currency":"USD","method":"visa","payment":{"card_token":"tok_visa_1","last4":"4242"}}'


class Minimal(FastHttpUser):
    wait_time = constant(0)

    @task
    def checkout(self):
        self.client.post("/api/checkout", data=BODY,
                         headers={"Content-Type": "application/json", "Idempotency-Key": "k-12345678"})
"""

MINIMAL_NAME = "minimal FastHttpUser (fixed body)"
FULL_NAME = "checkout Shopper (full realism)"
SHOPPER_FLAGS = ["--think-time-scale", "0", "--abandon-rate", "0", "--js-error-rate", "0"]


@contextmanager
def instant_server() -> Iterator[str]:
    """A ``fake_api`` process on a free port; always stopped."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "paychaos.traffic.fake_api", "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        time.sleep(1.0)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


WARMUP_S = 4.0  # start-up (faker pools), spawning and the first requests stay out of the window


def _cpu_s(pid: int) -> float:
    """User+sys CPU seconds of a live process (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _checkouts(prefix: Path) -> int:
    """``POST /api/checkout`` requests so far (Locust's per-second CSV history)."""
    history = prefix.with_name(prefix.name + "_stats_history.csv")
    if not history.exists():
        return 0
    with history.open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["Name"] == "/api/checkout"]
    return int(rows[-1]["Total Request Count"]) if rows else 0


def run_locusts(
    runs: list[tuple[str, str, list[str]]], users: int, seconds: int, tmp: Path
) -> list[tuple[float, float]]:
    """Headless Locust processes started together, one per ``(locustfile, host, extra)``: each
    one's checkout POSTs per second and CPU µs per checkout.

    Both over the steady-state window from ``WARMUP_S`` to one second before the end.
    """
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for locustfile, host, extra in runs:
            prefix = tmp / f"stats-{time.monotonic_ns()}"
            argv = [
                str(Path(sys.executable).parent / "locust"),
                *("-f", locustfile, "--headless", "--host", host),
                *("-u", str(users), "-r", str(users), "--run-time", f"{seconds}s"),
                *("--only-summary", "--csv", str(prefix), "--csv-full-history"),
                *extra,
            ]
            proc = subprocess.Popen(
                argv,
                cwd=tmp,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append((proc, prefix))
        time.sleep(WARMUP_S)
        first = [(_cpu_s(p.pid), _checkouts(prefix), time.monotonic()) for p, prefix in procs]
        time.sleep(seconds - WARMUP_S - 1)
        last = [(_cpu_s(p.pid), _checkouts(prefix), time.monotonic()) for p, prefix in procs]
        for proc, _ in procs:
            proc.wait(timeout=90)
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    results = []
    for (cpu0, n0, t0), (cpu1, n1, t1) in zip(first, last, strict=True):
        count = max(n1 - n0, 1)
        results.append((count / (t1 - t0), 1e6 * (cpu1 - cpu0) / count))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=15, help="run time, at least 8")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also the shopper without RUM, and without RUM and tracing",
    )
    args = parser.parse_args()
    if args.seconds < 8:
        parser.error("--seconds: at least 8 (4 s of warm-up, then the measured window)")
    checkout = str(REPO / "locustfiles" / "checkout.py")
    common = (args.users, args.seconds)
    results: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    pairs: dict[str, list[tuple[tuple[float, float], tuple[float, float]]]] = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmpdir:
        host = stack.enter_context(instant_server())
        other_host = stack.enter_context(instant_server())
        collector = stack.enter_context(instant_server())
        tmp = Path(tmpdir)
        minimal = tmp / "minimal.py"
        minimal.write_text(MINIMAL)
        ledger = ("--ledger-dir", str(tmp / "l"))
        runs: dict[str, tuple[str, list[str]]] = {
            MINIMAL_NAME: (str(minimal), []),
            FULL_NAME: (checkout, [*SHOPPER_FLAGS, "--collector-url", collector, *ledger]),
        }
        if args.variants:
            runs["checkout Shopper (client span, no RUM)"] = (
                checkout,
                [*SHOPPER_FLAGS, "--no-rum", "--collector-url", collector, *ledger],
            )
            runs["checkout Shopper (no RUM, no tracing)"] = (
                checkout,
                [*SHOPPER_FLAGS, "--no-rum", *ledger],
            )
        for _ in range(args.rounds):
            for name, (locustfile, extra) in runs.items():
                [(rate, cpu_us)] = run_locusts([(locustfile, host, extra)], *common, tmp)
                results.setdefault(name, []).append(rate)
                cpu.setdefault(name, []).append(cpu_us)
        # Side by side: the minimal user and one shopper at once, each on its own endpoint, so
        # whatever the shared machine does in that window it does to both.
        for _ in range(args.rounds):
            for name, (locustfile, extra) in runs.items():
                if name == MINIMAL_NAME:
                    continue
                both = run_locusts(
                    [(str(minimal), host, []), (locustfile, other_host, extra)], *common, tmp
                )
                pairs.setdefault(name, []).append((both[0], both[1]))
    print(
        f"endpoint: paychaos.traffic.fake_api (instant 201), collector: a second instant server; "
        f"{args.users} users, {args.seconds}s, 1 Locust process each, {args.rounds} round(s)"
    )
    print(
        f"counted: POST /api/checkout requests/s and the Locust process's user+sys CPU per "
        f"checkout, from {WARMUP_S:g}s to 1s before the end (median of the rounds; rates of "
        "every round in brackets)"
    )
    print("one after the other (rounds alternate the users):")
    base = statistics.median(results[MINIMAL_NAME])
    for name, rates in results.items():
        rate = statistics.median(rates)
        each = ", ".join(f"{r:.0f}" for r in rates)
        cpu_us = statistics.median(cpu[name])
        print(
            f"  {name:<40} {rate:8.0f}/s  ratio {rate / base:5.2f}  CPU {cpu_us:6.1f} µs  [{each}]"
        )
    print(
        "side by side with the minimal user (both at once, each on its own endpoint): CPU per "
        "checkout minimal/shopper, the rate ratio wherever the Locust process is the bottleneck; "
        "rates shopper/minimal in the same window"
    )
    for name, rows in pairs.items():
        cpu_ratios = [m[1] / max(s[1], 1e-9) for m, s in rows]
        rate_ratios = [s[0] / max(m[0], 1e-9) for m, s in rows]
        each = ", ".join(f"{m[1]:.0f}/{s[1]:.0f} µs" for m, s in rows)
        print(
            f"  {name:<40} CPU ratio {statistics.median(cpu_ratios):5.2f}  rate ratio "
            f"{statistics.median(rate_ratios):5.2f}  [{each}]"
        )
    print("target: full-realism shopper/minimal >= 0.90")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
