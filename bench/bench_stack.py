"""End-to-end throughput and latency of the whole embedded stack; telemetry on vs off.

Starts the real stack (PostgreSQL, gateway, fault proxy, collector, API,
Prometheus, Alertmanager), drives checkouts from a separate process for a
fixed time, and prints checkouts/s and p50/p99. Rounds alternate telemetry
on / off in one run so that the ratio is measured side by side on the same
machine state. "Off" means the OpenTelemetry SDK is disabled in every service
(no spans, no OTLP logs); Prometheus metrics and JSON log lines stay on.

    .venv/bin/python bench/bench_stack.py [--duration-s 15] [--concurrency 64]
        [--rounds 2] [--gateway-latency-scale 0] [--profile]

With ``--profile``, py-spy samples the payment API during the first
telemetry-on round and the top functions by own time are printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stack.embedded import EmbeddedStack, StackConfig, StackPorts


def one_round(tracing: bool, args: argparse.Namespace, profile: bool) -> dict:
    state = Path(tempfile.mkdtemp(prefix="paychaos-bench-"))
    cfg = StackConfig(
        state_dir=state,
        ports=StackPorts.auto(),
        tracing=tracing,
        gateway_latency_scale=args.gateway_latency_scale,
        gateway_seed=1,
    )
    stack = EmbeddedStack(cfg)
    spy: subprocess.Popen[bytes] | None = None
    try:
        stack.start()
        url = stack.urls["api"]
        # warm up: connections, JIT-less caches, the table's first pages
        subprocess.run([sys.executable, "-m", "paychaos.loadgen", "--url", url, "--total", "300",
                        "--concurrency", "16"], check=True, capture_output=True)  # fmt: skip
        spy_bin = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if profile and Path(spy_bin).exists():
            pid = stack.supervisor.pid_of("api")
            spy = subprocess.Popen(
                [spy_bin, "record", "--pid", str(pid), "--duration", str(int(args.duration_s)),
                 "--format", "raw", "--output", str(state / "api.folded"), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-m", "paychaos.loadgen", "--url", url, "--total", "10000000",
             "--concurrency", str(args.concurrency), "--duration-s", str(args.duration_s)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        result = json.loads(out.stdout)
        if spy is not None:
            spy.wait(timeout=args.duration_s + 30)
            result["profile"] = top_functions(state / "api.folded")
        return result
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait()
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)


def top_functions(folded: Path, n: int = 15) -> list[tuple[str, float]]:
    """Own-time share per function from py-spy's folded stacks."""
    if not folded.exists():
        return []
    own: dict[str, int] = {}
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        leaf = frames[-1] if frames else "?"
        own[leaf] = own.get(leaf, 0) + int(count)
        total += int(count)
    ranked = sorted(own.items(), key=lambda kv: kv[1], reverse=True)[:n]
    return [(name, 100.0 * count / total) for name, count in ranked]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration-s", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--gateway-latency-scale", type=float, default=0.0)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    results: dict[bool, list[dict]] = {True: [], False: []}
    profiled = False
    for i in range(args.rounds):
        for tracing in (True, False):
            want_profile = args.profile and tracing and not profiled
            r = one_round(tracing, args, want_profile)
            profiled = profiled or want_profile
            results[tracing].append(r)
            print(f"round {i + 1} telemetry {'on ' if tracing else 'off'}: {r['rate_per_s']:7.1f} "
                  f"checkouts/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
                  f"codes {r['codes']}", flush=True)  # fmt: skip
    on = statistics.median(r["rate_per_s"] for r in results[True])
    off = statistics.median(r["rate_per_s"] for r in results[False])
    p99_on = statistics.median(r["p99_ms"] for r in results[True])
    print()
    print(f"concurrency {args.concurrency}, {args.duration_s:.0f}s per round, gateway latency "
          f"scale {args.gateway_latency_scale}")  # fmt: skip
    print(f"telemetry on : {on:7.1f} checkouts/s (median of {args.rounds}), p99 {p99_on:.1f} ms")
    print(f"telemetry off: {off:7.1f} checkouts/s (median of {args.rounds})")
    print(
        f"throughput ratio on/off: {on / off:.3f}  (telemetry costs {100 * (1 - on / off):.1f} %)"
    )
    for r in results[True]:
        if r.get("profile"):
            print("\npayment API, own time per function (py-spy, telemetry on):")
            for name, share in r["profile"]:
                print(f"  {share:5.1f} %  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
