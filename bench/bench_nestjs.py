"""The seed's NestJS payment service against paychaos' Python API, side by side.

Each round starts a fresh embedded stack with one API (``app=python`` or
``app=nestjs``; the same PostgreSQL behind the fault proxy, the same gateway,
collector, Prometheus), warms it up, drives checkouts from a separate process
for a fixed time, and records checkouts/s, p50/p99 and the API's CPU per
checkout and memory. Rounds alternate the two APIs so both are measured on
the same machine state; the medians are printed side by side.

    .venv/bin/python bench/bench_nestjs.py [--duration-s 15] [--concurrency 64]
        [--rounds 2] [--gateway-latency-scale 0] [--no-tracing]

Needs the NestJS build (``make nestjs``).
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

from paychaos.stack.embedded import EmbeddedStack, StackConfig, StackPorts
from paychaos.stack.instance import cpu_seconds, process_tree
from paychaos.stack.nestjs_app import build_problem

APPS = ("python", "nestjs")


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid``'s process tree, MiB."""
    total_kib = 0
    for p in process_tree([pid]):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def one_round(app: str, args: argparse.Namespace) -> dict:
    state = Path(tempfile.mkdtemp(prefix="paychaos-bench-"))
    cfg = StackConfig(
        state_dir=state,
        ports=StackPorts.auto(),
        tracing=not args.no_tracing,
        gateway_latency_scale=args.gateway_latency_scale,
        gateway_seed=1,
        app=app,
    )
    stack = EmbeddedStack(cfg)
    try:
        stack.start()
        url = stack.urls["api"]
        # warm up: connections, V8's JIT / CPython's caches, the table's first pages
        subprocess.run([sys.executable, "-m", "paychaos.loadgen", "--url", url, "--total", "300",
                        "--concurrency", "16"], check=True, capture_output=True)  # fmt: skip
        pid = stack.supervisor.pid_of("api")
        assert pid is not None
        cpu_before = sum(cpu_seconds(p) for p in process_tree([pid]))
        out = subprocess.run(
            [sys.executable, "-m", "paychaos.loadgen", "--url", url, "--total", "10000000",
             "--concurrency", str(args.concurrency), "--duration-s", str(args.duration_s)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        result = json.loads(out.stdout)
        cpu = sum(cpu_seconds(p) for p in process_tree([pid])) - cpu_before
        result["api_cpu_ms_per_checkout"] = 1000 * cpu / max(1, result["sent"])
        result["api_rss_mib"] = rss_mib(pid)
        return result
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration-s", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--gateway-latency-scale", type=float, default=0.0)
    parser.add_argument("--no-tracing", action="store_true", help="OpenTelemetry off in both")
    args = parser.parse_args()
    problem = build_problem()
    if problem is not None:
        print(f"bench_nestjs: {problem}", file=sys.stderr)
        return 2
    results: dict[str, list[dict]] = {app: [] for app in APPS}
    for i in range(args.rounds):
        for app in APPS if i % 2 == 0 else reversed(APPS):
            r = one_round(app, args)
            results[app].append(r)
            print(f"round {i + 1} {app:<6}: {r['rate_per_s']:7.1f} checkouts/s  "
                  f"p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
                  f"api {r['api_cpu_ms_per_checkout']:5.2f} ms CPU/checkout  "
                  f"rss {r['api_rss_mib']:5.0f} MiB  codes {r['codes']}", flush=True)  # fmt: skip
    print()
    print(f"concurrency {args.concurrency}, {args.duration_s:.0f}s per round, gateway latency "
          f"x{args.gateway_latency_scale:g}, telemetry {'off' if args.no_tracing else 'on'}, "
          f"median of {args.rounds} round(s)")  # fmt: skip
    print(f"{'':<22}{'python (FastAPI)':>18}{'nestjs (Node)':>18}")
    rows = (
        ("checkouts/s", "rate_per_s", "{:.1f}"),
        ("p50 ms", "p50_ms", "{:.1f}"),
        ("p99 ms", "p99_ms", "{:.1f}"),
        ("API CPU ms/checkout", "api_cpu_ms_per_checkout", "{:.2f}"),
        ("API RSS MiB (end)", "api_rss_mib", "{:.0f}"),
    )
    for label, key, fmt in rows:
        cells = [fmt.format(statistics.median(r[key] for r in results[app])) for app in APPS]
        print(f"{label:<22}{cells[0]:>18}{cells[1]:>18}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
