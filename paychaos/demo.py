"""``paychaos demo``: the embedded stack end to end, in one command.

Starts every component, sends a bounded mix of checkouts, then asks the real
Prometheus the seed's question (§6.1, "which payment method is least used
today?") and checks the answer against what was really sent; shows one
checkout's trace from the collector; stops everything.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from paychaos.contracts.errors import ExpectationFailed, PaychaosError
from paychaos.loadgen import DEFAULT_MIX, LoadResult, drive
from paychaos.stack.embedded import EmbeddedStack, StackConfig, StackPorts

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
    *,
    total: int = 1200,
    concurrency: int = 24,
    mix: Mapping[str, float] = DEFAULT_MIX,
    state_dir: Path | None = None,
    out: Callable[[str], None] = print,
) -> DemoResult:
    """Run the demo and return what it measured; raises ExpectationFailed on a wrong answer."""
    from paychaos.stack.monitoring.promapi import PrometheusClient

    own_dir = state_dir is None
    state = state_dir or Path(tempfile.mkdtemp(prefix="paychaos-demo-"))
    cfg = StackConfig(state_dir=state, ports=StackPorts.auto(), gateway_seed=11)
    out(f"starting the embedded stack (state in {state}) ...")
    stack = EmbeddedStack(cfg, on_event=lambda kind, msg: out(f"  {kind:<10} {msg}"))
    try:
        stack.start()
        for name, url in stack.urls.items():
            out(f"  {name:<17} {url}")
        out(f"sending {total} checkouts, {concurrency} at a time, mix {dict(mix)} ...")
        load = asyncio.run(_drive_with_progress(stack.urls["api"], total, concurrency, mix, out))
        out(
            f"  done: {load.sent} in {load.duration_s:.1f}s ({load.rate_per_s:.0f}/s), "
            f"p50 {load.percentile_ms(0.5):.0f} ms, p99 {load.percentile_ms(0.99):.0f} ms"
        )
        sent_ok = {m: load.successes(m) for m in mix}
        out(
            "  client-side successes per method: "
            + ", ".join(f"{m}={n}" for m, n in sent_ok.items())
        )

        prom = PrometheusClient(stack.urls["prometheus"])
        out("waiting for Prometheus to scrape the final counts ...")
        expected_total = sum(sent_ok.values())
        prom.wait_until(
            'sum(shop_payments_total{status="success"})',
            lambda samples: bool(samples) and samples[0].value >= expected_total,
            timeout_s=cfg.scrape_interval_s * 6,
            poll_s=0.5,
        )
        all_methods = prom.query(
            'sum by (method) (increase(shop_payments_total{status="success"}[24h]))'
        )
        by_method = {s.labels.get("method", "?"): s.value for s in all_methods}
        answer = prom.query(SEED_LEAST_USED)
        got = answer[0].labels.get("method", "?") if answer else "(no answer)"
        want = min(sent_ok, key=lambda m: sent_ok[m])
        out(f"seed query §6.1: {SEED_LEAST_USED}")
        out(
            f"  Prometheus says the least used method is {got!r}; the client sent fewest to {want!r}"
        )
        _show_trace(stack.urls["collector"], out)
        if got != want:
            raise ExpectationFailed(f"the seed's bottomk query named {got}, expected {want}")
        out("OK: the metrics tell the truth about the traffic that was sent")
        return DemoResult(load, got, want, by_method)
    finally:
        out("stopping the stack ...")
        stack.stop()
        if own_dir:
            shutil.rmtree(state, ignore_errors=True)


async def _drive_with_progress(
    url: str, total: int, concurrency: int, mix: Mapping[str, float], out: Callable[[str], None]
) -> LoadResult:
    task = asyncio.ensure_future(drive(url, total=total, concurrency=concurrency, mix=mix))
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
