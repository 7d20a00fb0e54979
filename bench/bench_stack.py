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
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from paychaos.stack.embedded import EmbeddedStack, StackConfig, StackPorts
from paychaos.stack.instance import cpu_seconds, process_tree

VARIANTS = {
    "no trace export": (("OTEL_TRACES_EXPORTER", "none"),),
    "no log export": (("OTEL_LOGS_EXPORTER", "none"),),
}


def one_round(
    tracing: bool, args: argparse.Namespace, profile: bool, extra_env: tuple = ()
) -> dict:
    state = Path(tempfile.mkdtemp(prefix="paychaos-bench-"))
    cfg = StackConfig(
        state_dir=state,
        ports=StackPorts.auto(),
        extra_env=extra_env,
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
                 "--format", "raw", "--full-filenames", "--output", str(state / "api.folded"), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        cpu_before = component_cpu(stack)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(
            [sys.executable, "-m", "paychaos.loadgen", "--url", url, "--total", "10000000",
             "--concurrency", str(args.concurrency), "--duration-s", str(args.duration_s)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        result = json.loads(out.stdout)
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_after = component_cpu(stack)
        cpu = {name: cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0) for name in cpu_after}
        cpu["load generator"] = (children_after.ru_utime + children_after.ru_stime) - (
            children_before.ru_utime + children_before.ru_stime
        )
        result["cpu_s"] = cpu
        if spy is not None:
            spy.wait(timeout=args.duration_s + 30)
            result["profile"] = top_functions(state / "api.folded")
            result["packages"] = package_shares(state / "api.folded")
        return result
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait()
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)


def component_cpu(stack: EmbeddedStack) -> dict[str, float]:
    """CPU seconds used so far by each component's process tree."""
    usage = {}
    for name, comp in stack.supervisor.components.items():
        if comp.pid:
            usage[name] = sum(cpu_seconds(pid) for pid in process_tree([comp.pid]))
    return usage


PACKAGES = ("opentelemetry", "logging", "prometheus_client", "asyncpg", "aiohttp", "pydantic",
            "fastapi", "starlette", "uvicorn", "stack/api", "json", "uuid", "hashlib")  # fmt: skip


def package_shares(folded: Path) -> list[tuple[str, float]]:
    """Inclusive share of samples with a frame from each package (sums can exceed 100 %)."""
    if not folded.exists():
        return []
    hits = dict.fromkeys(PACKAGES, 0)
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        for pkg in PACKAGES:
            if f"/{pkg}/" in stack or f"/{pkg}.py" in stack:
                hits[pkg] += int(count)
    return sorted(((p, 100.0 * n / max(1, total)) for p, n in hits.items()), key=lambda x: -x[1])


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
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also run with only trace export off and only log export off",
    )
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
    print("\nCPU seconds per component during the measured window (first round):")
    on_cpu, off_cpu = results[True][0]["cpu_s"], results[False][0]["cpu_s"]
    for name in sorted(on_cpu, key=lambda n: -on_cpu[n]):
        per_k_on = 1000 * on_cpu[name] / max(1, results[True][0]["sent"])
        per_k_off = 1000 * off_cpu.get(name, 0.0) / max(1, results[False][0]["sent"])
        print(f"  {name:<15} on {on_cpu[name]:6.2f} s ({per_k_on:5.2f} s per 1000 checkouts)   "
              f"off {off_cpu.get(name, 0.0):6.2f} s ({per_k_off:5.2f} s per 1000)")  # fmt: skip
    if args.breakdown:
        print("\nbreakdown (one round each): checkouts/s and payment-API CPU per checkout")
        rows = [("full telemetry", results[True][0]), ("SDK disabled", results[False][0])]
        rows += [(name, one_round(True, args, False, env)) for name, env in VARIANTS.items()]
        for name, r in rows:
            api_ms = 1000 * r["cpu_s"]["api"] / max(1, r["sent"])
            total_ms = 1000 * sum(r["cpu_s"].values()) / max(1, r["sent"])
            print(f"  {name:<16} {r['rate_per_s']:7.1f}/s   api {api_ms:5.2f} ms CPU/checkout   "
                  f"whole stack {total_ms:5.2f} ms CPU/checkout")  # fmt: skip
    for r in results[True]:
        if r.get("profile"):
            print("\npayment API, own time per function (py-spy, telemetry on):")
            for name, share in r["profile"]:
                print(f"  {share:5.1f} %  {name}")
            print("\npayment API, share of samples inside each package (inclusive):")
            for name, share in r["packages"]:
                print(f"  {share:5.1f} %  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
