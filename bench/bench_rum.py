"""What one visit's RUM costs the load generator, part by part, without load around it.

The Locust shopper sends one Faro body per visit (``paychaos.traffic.rum``) from a
background greenlet (``paychaos.traffic.rum_sender``). ``bench_traffic.py`` measures
what that costs a whole Locust process under load; this bench takes the parts
apart, in this process, with nothing else running in it:

- **collect**: the visit's page views, cart, click and result items as the
  shopper records them on its hot path (``model.visit`` ... ``payment_result``),
  without the purchase draw and the trace ids, which the shopper pays with RUM
  off too;
- **build**: ``Journey.payload()``, the Faro body (about 2 kB);
- **send**: ``RumSender`` posting the bodies pipelined to an instant server
  (``paychaos.traffic.fake_api`` in its own process) and reading every answer,
  the body building included (the sender builds them), minus **build**.

Each figure is CPU µs per visit (``time.process_time``), the median of
``--rounds``; each visit's result is recorded a few ms after its click, as a
checkout request separates them (so a body has more than one timestamp).

    .venv/bin/python bench/bench_rum.py [--visits 20000] [--rounds 3]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_traffic import instant_server  # noqa: E402

from paychaos.traffic import model  # noqa: E402
from paychaos.traffic.rum import Journey  # noqa: E402
from paychaos.traffic.rum_sender import RumSender  # noqa: E402
from paychaos.traffic.tracing import new_ids  # noqa: E402

PAGES = ("product", "product", "cart", "checkout")  # the shopper's mean: ~2 browsed, cart, checkout


def visits(n: int, rng: random.Random) -> tuple[list[Journey], float]:
    """``n`` visits' RUM as the shopper collects it, and the CPU µs per visit that took.

    Every visit's items up to the click first, then (after a pause standing for the
    checkout requests) every result: the clock is read twice per pass, not per visit."""
    shoppers = model.shopper_model()
    purchases = [shoppers.purchase(rng) for _ in range(n)]
    traces = [new_ids(rng) for _ in range(n)]  # the client span's: paid with RUM off too
    journeys: list[Journey] = []
    t0 = time.process_time()
    for i, (purchase, ids) in enumerate(zip(purchases, traces, strict=True)):
        journey = model.visit(rng, purchase, f"bench-s{i:08x}")
        for page in PAGES:
            journey.page_view(rng, page)
        model.add_to_cart(journey, purchase)
        model.click_payment(journey, purchase, trace=ids)
        journeys.append(journey)
    spent = time.process_time() - t0
    time.sleep(0.002)
    t0 = time.process_time()
    for journey, purchase, ids in zip(journeys, purchases, traces, strict=True):
        model.payment_result(journey, rng, purchase.method, "succeeded", trace=ids)
    spent += time.process_time() - t0
    return journeys, 1e6 * spent / n


def build(journeys: list[Journey]) -> float:
    """CPU µs per visit of building every body."""
    t0 = time.process_time()
    for journey in journeys:
        journey.payload()
    return 1e6 * (time.process_time() - t0) / len(journeys)


def send(journeys: list[Journey], collector: str) -> tuple[float, int, int]:
    """CPU µs per visit of submitting, building and posting every body; (µs, sent, batches)."""
    sender = RumSender(collector)
    try:
        t0 = time.process_time()
        for i, journey in enumerate(journeys):
            sender.submit(journey)
            if i % 200 == 199:  # let the sender's greenlet run, as the shoppers' waits do
                gevent.sleep(0.005)
        sender.flush(timeout_s=60)
        spent = time.process_time() - t0
    finally:
        sender.close()
    if sender.sent != len(journeys):
        raise SystemExit(
            f"bench_rum: {sender.sent} of {len(journeys)} bodies answered 2xx "
            f"({sender.dropped} dropped, {sender.failed} failed)"
        )
    return 1e6 * spent / len(journeys), sender.sent, sender.batches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.visits < 100 or args.rounds < 1:
        parser.error("--visits: at least 100; --rounds: at least 1")
    rng = random.Random(7)
    figures: dict[str, list[float]] = {"collect": [], "build": [], "send": []}
    size = 0
    with instant_server() as collector:
        for _ in range(args.rounds):
            journeys, collect_us = visits(args.visits, rng)
            size = len(journeys[0].payload())
            build_us = build(journeys)
            send_us, sent, batches = send(journeys, collector)
            figures["collect"].append(collect_us)
            figures["build"].append(build_us)
            figures["send"].append(send_us - build_us)
            print(
                f"round: collect {collect_us:5.1f} µs, build {build_us:5.1f} µs, send "
                f"{send_us - build_us:5.1f} µs per visit ({sent} bodies in {batches} batches)",
                flush=True,
            )
    total = sum(statistics.median(v) for v in figures.values())
    print(
        f"RUM per visit, CPU µs (median of {args.rounds} rounds of {args.visits} visits; "
        f"body {size} bytes, {len(PAGES) + 1} page views, 3 events):"
    )
    for name, values in figures.items():
        print(f"  {name:<8} {statistics.median(values):6.1f}")
    print(f"  {'total':<8} {total:6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
