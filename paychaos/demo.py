"""``paychaos demo``: a target end to end, in one command.

Sends a bounded mix of checkouts to the target (by default an embedded stack
started for the demo), then asks its real Prometheus the seed's question
(§6.1, "which payment method is least used today?") and checks the answer
against what was really sent; shows one checkout's trace from the collector.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from paychaos.contracts.domain import DEFAULT_MIX
from paychaos.contracts.errors import ExpectationFailed, PaychaosError
from paychaos.contracts.target import Checkout
from paychaos.loadgen import LoadResult, drive
from paychaos.targets.resolve import TargetSession

SEED_LEAST_USED = (
    'bottomk(1, sum by (method) (increase(shop_payments_total{status="success"}[24h])))'
)


@dataclass(frozen=True)
class DemoResult:
    load: LoadResult
    least_used_by_prometheus: str
    least_used_sent: str
    successes_by_prometheus: Mapping[str, float]


def run_demo(
    session: TargetSession,
    *,
    total: int = 1200,
    concurrency: int = 24,
    mix: Mapping[str, float] = DEFAULT_MIX,
    out: Callable[[str], None] = print,
) -> DemoResult:
    """Run the demo on ``session``'s target; raises ExpectationFailed on a wrong answer.

    On a stack started for the demo the seed's 24 h query must name the method the
    client sent fewest successes to. On a target that ran before, the 24 h window
    holds its history too: the demo then checks this run's own increase per method
    (read from the same counter before and after) and shows the seed's answer beside it.
    """
    from paychaos.stack.monitoring.promapi import PrometheusClient

    target = session.target
    if not target.signals.prometheus:
        raise ExpectationFailed(f"target {target.name} has no Prometheus to ask the seed's query")
    for name, url in target.urls().items():
        out(f"  {name:<17} {url}")
    prom = PrometheusClient(target.signals.prometheus)
    # a baseline sample of the counter before any traffic: increase() over the seed's 24 h
    # needs two samples of each series, and on a stack started a moment ago Prometheus
    # may not have scraped the API yet (the whole run could then fit between two scrapes)
    try:
        prom.wait_until(
            "count(shop_payments_total)",
            lambda samples: bool(samples) and samples[0].value > 0,
            timeout_s=target.timing.scrape_interval_s * 6,
            poll_s=0.5,
        )
    except ExpectationFailed:
        # a shop whose counter is born with its first payment: nothing to wait for
        out("  (Prometheus has no shop_payments_total before the traffic)")
    before = _successes(prom)
    out(f"sending {total} checkouts, {concurrency} at a time, mix {dict(mix)} ...")
    load = asyncio.run(
        _drive_with_progress(target.checkout, total, concurrency, mix, out, target.allow_hosts)
    )
    out(
        f"  done: {load.sent} in {load.duration_s:.1f}s ({load.rate_per_s:.0f}/s), "
        f"p50 {load.percentile_ms(0.5):.0f} ms, p99 {load.percentile_ms(0.99):.0f} ms"
    )
    sent_ok = {m: load.successes(m) for m in mix}
    out("  client-side successes per method: " + ", ".join(f"{m}={n}" for m, n in sent_ok.items()))
    out("waiting for Prometheus to scrape the final counts ...")
    expected_total = sum(before.values()) + sum(sent_ok.values())
    prom.wait_until(
        'sum(shop_payments_total{status="success"})',
        lambda samples: bool(samples) and samples[0].value >= expected_total,
        timeout_s=target.timing.scrape_interval_s * 6,
        poll_s=0.5,
    )
    after = _successes(prom)
    increase = {m: after.get(m, 0.0) - before.get(m, 0.0) for m in mix}
    all_methods = prom.query(
        'sum by (method) (increase(shop_payments_total{status="success"}[24h]))'
    )
    by_method = {s.labels.get("method", "?"): s.value for s in all_methods}
    answer = prom.query(SEED_LEAST_USED)
    got = answer[0].labels.get("method", "?") if answer else "(no answer)"
    want = min(sent_ok, key=lambda m: sent_ok[m])
    out(f"seed query §6.1: {SEED_LEAST_USED}")
    out(f"  Prometheus says the least used method is {got!r}; the client sent fewest to {want!r}")
    if session.owned:
        if got != want:
            raise ExpectationFailed(f"the seed's bottomk query named {got}, expected {want}")
    else:
        out(
            "  (this target ran before: its 24 h window holds earlier traffic too; "
            "this run's own increase per method: "
            + ", ".join(f"{m}={increase[m]:.0f}" for m in mix)
            + ")"
        )
        wrong = {m: (increase[m], sent_ok[m]) for m in mix if round(increase[m]) != sent_ok[m]}
        if wrong:
            raise ExpectationFailed(
                "shop_payments_total grew by other amounts than the client saw succeed: "
                + ", ".join(f"{m} +{inc:.0f} vs {ok}" for m, (inc, ok) in wrong.items())
            )
    traces = target.signals.traces
    if traces is not None and traces.kind == "collector":
        _show_trace(traces.url, out)
    out("OK: the metrics tell the truth about the traffic that was sent")
    return DemoResult(load, got, want, by_method)


def _successes(prom: Any) -> dict[str, float]:
    samples = prom.query('sum by (method) (shop_payments_total{status="success"})')
    return {s.labels.get("method", "?"): s.value for s in samples}


async def _drive_with_progress(
    checkout: Checkout,
    total: int,
    concurrency: int,
    mix: Mapping[str, float],
    out: Callable[[str], None],
    allow_hosts: tuple[str, ...] = (),
) -> LoadResult:
    task = asyncio.ensure_future(
        drive(
            checkout.url,
            total=total,
            concurrency=concurrency,
            mix=mix,
            allow_hosts=allow_hosts,
            checkout=checkout,
        )
    )
    start = time.monotonic()
    while not task.done():
        await asyncio.sleep(1.0)
        if not task.done():
            out(f"  ... {time.monotonic() - start:.0f}s elapsed")
    return task.result()


def _show_trace(collector_url: str, out: Callable[[str], None]) -> None:
    """Print one checkout trace from the collector (the seed's §6.2 view)."""
    from paychaos.contracts.signals import SpanQuery
    from paychaos.stack.collector.client import CollectorClient

    client = CollectorClient(collector_url)
    time.sleep(1.5)  # services export spans in batches every 0.5 s
    try:
        roots = client.find_spans(
            SpanQuery(service="payment-api", name="POST /api/checkout", limit=1)
        )
        spans = client.get_trace(roots[0].trace_id) if roots else []
    except PaychaosError as exc:  # the demo's main answer does not depend on this
        out(f"  (could not read a trace from the collector: {exc})")
        return
    if not spans:
        out("  (no checkout trace reached the collector)")
        return
    out(f"one checkout trace, {spans[0].trace_id}:")
    t0 = min(span.start_unix_ns for span in spans)
    for span in spans:
        offset_ms = (span.start_unix_ns - t0) / 1e6
        out(f"  +{offset_ms:7.1f} ms {span.service:<16} {span.name:<30} {span.duration_ms:8.1f} ms")
