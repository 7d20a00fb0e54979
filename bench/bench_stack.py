"""End-to-end figures of the whole embedded stack a user can trust, in one run.

Starts the real stack (PostgreSQL, gateway, fault proxy, collector, API,
Prometheus, Alertmanager) and drives checkouts from a separate process
(``python -m paychaos.loadgen``). It prints:

1. closed model (``--concurrency`` checkouts in flight): *good* checkouts/s only
   (201 charged + 402 declined: the API decided the payment); 5xx answers,
   transport errors and other 4xx are counted apart. Telemetry on vs all off,
   at the instant gateway and at the default gateway latency profile. Rounds
   interleave on/off (and swap the order every round) so that the ratio is
   measured side by side on the same machine state; the ratio is the median of
   the per-round ratios. "Off" is ``PAYCHAOS_TELEMETRY=off``: in the payment API
   the OpenTelemetry SDK, the Prometheus metrics (an empty ``/metrics``) and the
   JSON log lines are all off; the other services' OpenTelemetry SDK is off too.
   Then CPU ms per good checkout of every component (the load generator
   included) and how many of the machine's cores were busy.
2. telemetry on vs off at the same arrival rate (instant gateway, half the
   closed model's on rate, or ``--rate``): CPU ms per good checkout of every
   component, what telemetry costs per checkout without the rate's own effect.
3. open model (telemetry on): a fixed arrival rate, with p50/p99 counted from
   when each checkout was due and the achieved vs the target rate; then a
   bounded search for the highest rate the stack sustains with p99 < 250 ms.
4. the stack's idle resident memory, summed over every component's process tree
   (PostgreSQL and Prometheus included; RSS and PSS, which counts shared pages
   once), and the time from the stack's start to every component healthy.

    .venv/bin/python bench/bench_stack.py            # ~4 minutes
    .venv/bin/python bench/bench_stack.py --quick    # ~1.5 minutes, noisier
    .venv/bin/python bench/bench_stack.py --profile  # + py-spy on the API (telemetry on)
    .venv/bin/python bench/bench_stack.py --variants # + each variant side by side with as built
    .venv/bin/python bench/bench_stack.py --variant "1 in 10 traces sampled"  # + only that one

``--variants`` runs two stacks at once, the stack as built and one variant (telemetry
all off, the SDK's own encoder, logs as OTLP records, spans not exported, the
garbage collector as Python's default, 1 in 10 traces sampled), each under
its own load, and compares their API CPU per good checkout: on this shared machine
two runs one after the other differ by up to a third, two stacks side by side by
a few per cent.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from paychaos.stack.embedded import EmbeddedStack, StackConfig, StackPorts
from paychaos.stack.instance import cpu_seconds, process_tree, rss_bytes
from paychaos.stack.service import GC_ENV, free_port
from paychaos.stack.telemetry import (
    OTEL_LOGS_EXPORTER,
    OTEL_TRACES_EXPORTER,
    OTLP_ENCODER_ENV,
    TELEMETRY_ENV,
)

P99_GOAL_MS = 250.0
PROFILES = {"instant": 0.0, "default": 1.0}
Variant = tuple[tuple[tuple[str, str], ...], dict[str, Any]]  # extra environment, StackConfig
VARIANTS: dict[str, Variant] = {  # --variants: telemetry on, one thing changed (instant gateway)
    "SDK encoder": (((OTLP_ENCODER_ENV, "sdk"),), {}),
    # the services' logs as OTLP log records from their own processes (round one's way)
    # instead of the collector reading their JSON log files
    "logs as OTLP records": (((OTEL_LOGS_EXPORTER, "otlp"),), {"logs_by_file": False}),
    # where the cost goes (not a configuration paychaos ships): spans created, not exported
    "spans not exported": (((OTEL_TRACES_EXPORTER, "none"),), {}),
    # every service with Python's own garbage collector settings (no freeze, gen-0 at 700)
    "GC as Python's default": (((GC_ENV, "python"),), {}),
    # what head sampling would buy (not a configuration paychaos ships: a scenario's trace
    # check could miss the one slow checkout): the SDK's own sampler, from its environment
    "1 in 10 traces sampled": (
        (("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0.1")),
        {},
    ),
}
ALL_OFF = "telemetry all off"


@dataclass
class Run:
    """One load run's figures (from the load generator's JSON summary)."""

    raw: dict[str, Any]
    cpu_s: dict[str, float] = field(default_factory=dict)
    loadgen_cpu_s: float = 0.0
    busy_cores: float = 0.0  # the whole machine during the run (every process, ours or not)

    @property
    def codes(self) -> dict[int, int]:
        return {int(k): v for k, v in self.raw["codes"].items()}

    @property
    def good(self) -> int:
        return self.codes.get(201, 0) + self.codes.get(402, 0)

    @property
    def server_errors(self) -> int:
        return sum(n for c, n in self.codes.items() if c >= 500)

    @property
    def transport_errors(self) -> int:
        return int(self.raw["transport_errors"])

    @property
    def other(self) -> int:
        return self.raw["sent"] - self.good - self.server_errors - self.transport_errors

    @property
    def good_per_s(self) -> float:
        return self.good / self.raw["duration_s"] if self.raw["duration_s"] else 0.0

    def line(self) -> str:
        by_code = ",".join(f"{c}:{n}" for c, n in sorted(self.codes.items()) if c >= 500)
        return (
            f"{self.good_per_s:7.1f} good/s  p50 {self.raw['p50_ms']:6.1f} ms  "
            f"p99 {self.raw['p99_ms']:6.1f} ms  5xx {self.server_errors}"
            f"{f' ({by_code})' if by_code else ''}  "
            f"transport {self.transport_errors}  other {self.other}"
        )


def loadgen(url: str, *, seconds: float, concurrency: int, rate: float | None = None) -> Run:
    total = int(rate * seconds) if rate else 10_000_000
    argv = [sys.executable, "-m", "paychaos.loadgen", "--url", url, "--total", str(total),
            "--concurrency", str(concurrency), "--duration-s", str(seconds)]  # fmt: skip
    if rate:
        argv += ["--rate", str(rate)]
    before = children_cpu_s()
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=seconds + 60)
    run = Run(json.loads(out.stdout))
    run.loadgen_cpu_s = children_cpu_s() - before
    return run


def children_cpu_s() -> float:
    """User+sys CPU of this process's waited-for children (the load generator, once it ended;
    the stack's components are children too, but alive, so not counted here)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy_s() -> tuple[float, float]:
    """(CPU seconds busy over every core, wall seconds) so far, from ``/proc/stat``: user,
    nice, system, irq and softirq; not idle, iowait or steal (the hypervisor's)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6]
    return busy / os.sysconf("SC_CLK_TCK"), time.monotonic()


def loadgen_split(urls: list[str], *, seconds: float, concurrency: int) -> Run:
    """Closed model split over several API processes (one load generator each, the
    concurrency shared); codes summed, duration the longest, p50/p99 the worst of them."""
    outs = [
        r.raw for r in loadgen_each(urls, seconds=seconds, concurrency=concurrency // len(urls))
    ]
    codes: dict[str, int] = {}
    for out in outs:
        for code, n in out["codes"].items():
            codes[code] = codes.get(code, 0) + n
    return Run(
        {
            "sent": sum(o["sent"] for o in outs),
            "duration_s": max(o["duration_s"] for o in outs),
            "p50_ms": max(o["p50_ms"] for o in outs),
            "p99_ms": max(o["p99_ms"] for o in outs),
            "codes": codes,
            "transport_errors": sum(o["transport_errors"] for o in outs),
        }
    )


def loadgen_each(urls: list[str], *, seconds: float, concurrency: int) -> list[Run]:
    """One closed-model load generator per URL, all at once, ``concurrency`` each."""
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "paychaos.loadgen",
                "--url",
                url,
                "--total",
                "10000000",
                "--concurrency",
                str(max(1, concurrency)),
                "--duration-s",
                str(seconds),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for url in urls
    ]
    runs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 60)
        runs.append(Run(json.loads(out)))
    return runs


def second_api(stack: EmbeddedStack) -> tuple[subprocess.Popen[bytes], str]:
    """The API's own command line and environment again, on another port: what a second
    worker would cost and serve (the experiment; the stack itself runs one API process)."""
    spec = stack.supervisor.components["api"].spec
    port = free_port()
    argv = list(spec.argv)
    argv[argv.index("--port") + 1] = str(port)
    proc = subprocess.Popen(
        argv, env={**os.environ, **spec.env}, cwd=spec.cwd,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    proc.wait()
    raise RuntimeError("the second API process did not get ready in 30 s")


def component_pids(stack: EmbeddedStack) -> dict[str, list[int]]:
    return {
        name: process_tree([comp.pid])
        for name, comp in stack.supervisor.components.items()
        if comp.pid
    }


def pss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def thread_cpu_s(pid: int, *, main: bool) -> float:
    """CPU seconds of a process's main thread (``main``) or of all its other threads."""
    total = 0.0
    try:
        tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return 0.0
    for tid in tids:
        if (tid == pid) != main:
            continue
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def component_cpu(stack: EmbeddedStack) -> dict[str, float]:
    usage = {n: sum(cpu_seconds(p) for p in pids) for n, pids in component_pids(stack).items()}
    api = stack.supervisor.components["api"].pid
    if api:  # the event loop's thread vs the rest (the OpenTelemetry SDK's export threads)
        usage["api: event loop"] = thread_cpu_s(api, main=True)
        usage["api: threads"] = thread_cpu_s(api, main=False)
    return usage


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.start_s: list[float] = []
        self.memory: dict[str, tuple[int, int]] | None = None

    def stack(
        self, telemetry: bool, scale: float, variant: Variant = ((), {})
    ) -> tuple[EmbeddedStack, Path]:
        state = Path(tempfile.mkdtemp(prefix="paychaos-bench-"))
        extra = variant[0] if telemetry else ((TELEMETRY_ENV, "off"),)
        cfg = StackConfig(
            **variant[1],
            state_dir=state,
            ports=StackPorts.auto(),
            extra_env=extra,
            tracing=telemetry,
            gateway_latency_scale=scale,
            gateway_seed=1,
        )
        stack = EmbeddedStack(cfg)
        t0 = time.perf_counter()
        try:
            stack.start()  # returns once every component answered its health check
        except BaseException:
            shutil.rmtree(state, ignore_errors=True)
            raise
        self.start_s.append(time.perf_counter() - t0)
        return stack, state

    def idle_memory(self, stack: EmbeddedStack) -> None:
        time.sleep(self.args.idle_s)
        self.memory = {
            name: (sum(rss_bytes(p) for p in pids), sum(pss_bytes(p) for p in pids))
            for name, pids in component_pids(stack).items()
        }

    def closed(
        self,
        telemetry: bool,
        scale: float,
        profile: bool = False,
        variant: Variant = ((), {}),
        api_processes: int = 1,
    ) -> Run:
        stack, state = self.stack(telemetry, scale, variant)
        spy: subprocess.Popen[bytes] | None = None
        extra: list[subprocess.Popen[bytes]] = []
        try:
            if self.memory is None:
                self.idle_memory(stack)
            url = stack.urls["api"]
            loadgen(url, seconds=self.args.warmup_s, concurrency=16)
            if profile:
                spy = start_spy(stack, state, self.args.seconds)
            urls = [url]
            for _ in range(api_processes - 1):
                proc, other = second_api(stack)
                extra.append(proc)
                urls.append(other)
                loadgen(other, seconds=self.args.warmup_s, concurrency=16)
            before = component_cpu(stack)
            cpu0 = sum(cpu_seconds(p.pid) for p in extra)
            busy0 = machine_busy_s()
            if len(urls) > 1:
                run = loadgen_split(
                    urls, seconds=self.args.seconds, concurrency=self.args.concurrency
                )
            else:
                run = loadgen(url, seconds=self.args.seconds, concurrency=self.args.concurrency)
            busy1 = machine_busy_s()
            run.busy_cores = (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1e-9)
            after = component_cpu(stack)
            extra_cpu = sum(cpu_seconds(p.pid) for p in extra) - cpu0
            after["api"] = after.get("api", 0.0) + extra_cpu
            run.cpu_s = {n: after[n] - before.get(n, 0.0) for n in after}
            if run.loadgen_cpu_s:
                run.cpu_s["load generator"] = run.loadgen_cpu_s
            if spy is not None:
                spy.wait(timeout=self.args.seconds + 30)
                print_profile(state / "api.folded")
            return run
        finally:
            for proc in extra:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if spy is not None and spy.poll() is None:
                spy.kill()
                spy.wait()
            stack.stop()
            shutil.rmtree(state, ignore_errors=True)


def start_spy(stack: EmbeddedStack, state: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    spy_bin = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy_bin).exists():
        print("py-spy not found (pip install py-spy): no profile", flush=True)
        return None
    pid = stack.supervisor.pid_of("api")
    return subprocess.Popen(
        [spy_bin, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
         "--format", "raw", "--threads", "--full-filenames", "--output", str(state / "api.folded"),
         "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


PACKAGES = (
    "opentelemetry", "google/protobuf", "logging", "prometheus_client", "asyncpg", "aiohttp",
    "pydantic", "fastapi", "starlette", "uvicorn", "stack/api", "stack/telemetry", "json",
    "threading",
)  # fmt: skip


# Who a sample's time belongs to: the innermost frame of one of these (stdlib frames such as
# contextlib, threading or random are passed over: they count for whoever called them).
OWNERS = (
    ("OpenTelemetry SDK and API", "/opentelemetry/"), ("our OTLP encoder", "otlp_encode"),
    ("Prometheus client", "/prometheus_client/"), ("logging", "/logging/"),
    ("JSON log lines (stack/telemetry.py)", "stack/telemetry.py"), ("asyncpg", "/asyncpg/"),
    ("aiohttp (gateway call)", "/aiohttp/"), ("uvicorn", "/uvicorn/"),
    ("starlette", "/starlette/"), ("fastapi", "/fastapi/"), ("pydantic", "/pydantic"),
    ("the API's own code", "/stack/api/"), ("asyncio", "/asyncio/"),
    ("http.client (export)", "/http/client"),
)  # fmt: skip


def owner_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, marker in OWNERS:
            if marker in frame:
                return name
    return "other"


def _thread_kind(stack: str) -> str:
    if "asyncio/runners.py" in stack or "uvicorn" in stack:
        return "(event loop)"
    if "sdk/_shared_internal" in stack or "export/__init__.py" in stack:
        return "(OpenTelemetry export)"
    return "(other)"


def print_profile(folded: Path, n: int = 15) -> None:
    """py-spy's folded stacks: own time per function, inclusive share per package, threads."""
    if not folded.exists():
        print("py-spy wrote no profile", flush=True)
        return
    own: dict[str, int] = {}
    owners: dict[str, int] = {}
    hits = dict.fromkeys(PACKAGES, 0)
    threads: dict[str, int] = {}
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + count
        owner = owner_of(frames)
        owners[owner] = owners.get(owner, 0) + count
        thread = frames[0].split(" ")[0] + " " + _thread_kind(stack)
        threads[thread] = threads.get(thread, 0) + count
        total += count
        for pkg in PACKAGES:
            if f"/{pkg}/" in stack or f"/{pkg}.py" in stack:
                hits[pkg] += count
    total = max(1, total)
    print("\npayment API (telemetry on), py-spy: own time per function", flush=True)
    for name, count in sorted(own.items(), key=lambda kv: -kv[1])[:n]:
        print(f"  {100 * count / total:5.1f} %  {name}")
    print("share of samples per thread:")
    for name, count in sorted(threads.items(), key=lambda kv: -kv[1])[:6]:
        print(f"  {100 * count / total:5.1f} %  {name}")
    print("share of samples by owner (the innermost frame of a known package; sums to 100 %):")
    for name, count in sorted(owners.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * count / total:5.1f} %  {name}")
    print("share of samples inside each package (inclusive; sums exceed 100 %):")
    for name, count in sorted(hits.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * count / total:5.1f} %  {name}")


def side_by_side(bench: Bench, args: argparse.Namespace) -> None:
    """Each variant against the stack as built, both at once (instant gateway).

    Two stacks run together, each under its own closed-model load of half the
    concurrency, so whatever the shared machine does in that window it does to
    both: the ratio of their API CPU per good checkout is far steadier than two
    runs one after the other (whose absolute speed moves by a third here)."""
    print(f"\nvariants side by side with the stack as built (instant gateway, both at once, "
          f"{args.concurrency // 2} checkouts in flight each, {args.seconds:.0f} s, "
          f"{args.rounds} round(s)): API CPU ms per good checkout", flush=True)  # fmt: skip
    others: list[tuple[str, Variant | None]] = [(ALL_OFF, None), *VARIANTS.items()]
    if args.variant:
        others = [(name, v) for name, v in others if name in args.variant]
    for name, variant in others:
        ratios: list[float] = []
        for i in range(args.rounds):
            pair: dict[str, tuple[EmbeddedStack, Path]] = {}
            try:
                for who, v in (("built", ((), {})), (name, variant)):
                    pair[who] = bench.stack(v is not None, 0.0, v or ((), {}))
                for stack, _ in pair.values():
                    loadgen(stack.urls["api"], seconds=args.warmup_s, concurrency=16)
                before = {who: component_cpu(stack) for who, (stack, _) in pair.items()}
                runs = dict(
                    zip(
                        pair,
                        loadgen_each(
                            [stack.urls["api"] for stack, _ in pair.values()],
                            seconds=args.seconds,
                            concurrency=max(1, args.concurrency // 2),
                        ),
                        strict=True,
                    )
                )
                ms = {}
                for who, (stack, _) in pair.items():
                    after = component_cpu(stack)
                    ms[who] = 1000 * (after["api"] - before[who]["api"]) / max(1, runs[who].good)
                ratios.append(ms[name] / max(ms["built"], 1e-9))
                print(f"  round {i + 1} {name}: {runs[name].good_per_s:6.1f} good/s, API "
                      f"{ms[name]:.2f} ms  |  as built: {runs['built'].good_per_s:6.1f} good/s, "
                      f"API {ms['built']:.2f} ms  |  ratio {ratios[-1]:.3f}", flush=True)  # fmt: skip
            finally:
                for stack, state in pair.values():
                    stack.stop()
                    shutil.rmtree(state, ignore_errors=True)
        print(f"  {name}: API CPU per good checkout {statistics.median(ratios):.3f}x the stack "
              f"as built (median; per round {', '.join(f'{x:.3f}' for x in ratios)})",
              flush=True)  # fmt: skip


SETTLE_S = 3.0  # between runs on one stack: what an overloaded run left queued drains first


def print_cpu_table(on_ms: dict[str, float], off_ms: dict[str, float]) -> None:
    """CPU ms per good checkout per component, on vs off, largest first; then their sum
    ("api: event loop" and "api: threads" are parts of "api": not counted twice)."""
    for name in sorted(on_ms, key=lambda n: -on_ms[n]):
        print(f"  {name:<16} on {on_ms[name]:5.2f}   off {off_ms.get(name, 0.0):5.2f}")
    on, off = (sum(v for n, v in ms.items() if not n.startswith("api:")) for ms in (on_ms, off_ms))
    api = off_ms.get("api", 0.0) / max(on_ms.get("api", 0.0), 1e-9)
    print(f"  {'all of them':<16} on {on:5.2f}   off {off:5.2f}   (off/on "
          f"{off / max(on, 1e-9):.3f}; the API alone {api:.3f})", flush=True)  # fmt: skip


def same_rate(bench: Bench, args: argparse.Namespace, closed_on: dict[str, float]) -> None:
    """Telemetry on vs off at the same arrival rate (instant gateway): CPU per checkout.

    In the closed model the stack with telemetry off runs at about twice the rate,
    and a component's CPU per checkout depends on its rate too (more checkouts
    share each wakeup). At one fixed rate, below what the stack with telemetry on
    sustains, the difference is what telemetry costs per checkout and nothing else."""
    rate = args.rate or max(1.0, round(closed_on["instant"] / 2))
    spent: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for i in range(args.rounds):
        for telemetry in (True, False) if i % 2 == 0 else (False, True):
            stack, state = bench.stack(telemetry, 0.0)
            try:
                url = stack.urls["api"]
                loadgen(url, seconds=args.warmup_s, concurrency=16)
                before = component_cpu(stack)
                r = loadgen(url, seconds=args.seconds, concurrency=args.open_cap, rate=rate)
                after = component_cpu(stack)
                after["load generator"] = r.loadgen_cpu_s
                good = max(1, r.good)
                spent[telemetry].append(
                    {n: 1000 * (after[n] - before.get(n, 0.0)) / good for n in after}
                )
                print(f"same rate, round {i + 1}, telemetry {'on ' if telemetry else 'off'}: "
                      f"target {rate:.0f}/s, {r.line()}", flush=True)  # fmt: skip
            finally:
                stack.stop()
                shutil.rmtree(state, ignore_errors=True)
    print(f"\nCPU ms per good checkout at the same rate, {rate:.0f}/s (instant gateway, open "
          f"model, median of {args.rounds} run(s) each):")  # fmt: skip
    names = spent[True][0]
    medians = {
        t: {n: statistics.median(run.get(n, 0.0) for run in spent[t]) for n in names}
        for t in (True, False)
    }
    print_cpu_table(medians[True], medians[False])


def open_model(bench: Bench, args: argparse.Namespace, closed_on: dict[str, float]) -> None:
    """Fixed-rate runs (telemetry on): one per gateway profile at ``--rate`` (default: half
    the closed model's good/s with telemetry on at that profile, measured above), then the
    bounded search at the instant gateway."""
    for profile, scale in PROFILES.items():
        stack, state = bench.stack(True, scale)
        try:
            url = stack.urls["api"]
            loadgen(url, seconds=args.warmup_s, concurrency=16)
            rate = args.rate or max(1.0, round(closed_on[profile] / 2))
            r = loadgen(url, seconds=args.seconds, concurrency=args.open_cap, rate=rate)
            achieved = r.raw["sent"] / r.raw["duration_s"]
            source = "--rate" if args.rate else "half the closed model's on rate"
            print(f"open model, {profile} gateway, target {rate:.0f}/s ({source}): sent "
                  f"{achieved:.1f}/s, {r.line()}", flush=True)  # fmt: skip
            if profile != "instant":
                continue
            lo, hi = 0.0, max(closed_on["instant"] * 1.2, rate)
            best: Run | None = None
            for _ in range(args.search_steps):
                mid = (lo + hi) / 2 if best or lo else hi * 0.6
                time.sleep(SETTLE_S)
                r = loadgen(url, seconds=args.search_s, concurrency=args.open_cap, rate=mid)
                achieved = r.raw["sent"] / r.raw["duration_s"]
                bad = r.server_errors + r.transport_errors
                ok = r.raw["p99_ms"] < P99_GOAL_MS and achieved >= 0.97 * mid and bad == 0
                print(f"  search {mid:6.0f}/s: achieved {achieved:6.1f}/s  p99 "
                      f"{r.raw['p99_ms']:6.1f} ms  errors {bad}  -> "
                      f"{'sustained' if ok else 'not sustained'}", flush=True)  # fmt: skip
                if ok:
                    lo, best = mid, r
                else:
                    hi = mid
            if best is not None:
                print(f"highest rate sustained with p99 < {P99_GOAL_MS:.0f} ms (instant gateway, "
                      f"telemetry on, {args.search_steps} bisection steps of {args.search_s:.0f} "
                      f"s): {lo:.0f}/s (p99 {best.raw['p99_ms']:.1f} ms); not sustained at "
                      f"{hi:.0f}/s", flush=True)  # fmt: skip
            else:
                print(f"no searched rate was sustained with p99 < {P99_GOAL_MS:.0f} ms "
                      f"(lowest tried: {hi:.0f}/s)", flush=True)  # fmt: skip
        finally:
            stack.stop()
            shutil.rmtree(state, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 round, 5 s runs, 4 search steps (about 1.5 minutes)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=10.0, help="each measured run")
    parser.add_argument("--rounds", type=int, default=2, help="on/off pairs per gateway profile")
    parser.add_argument("--concurrency", type=int, default=64, help="closed model")
    parser.add_argument("--rate", type=float, default=None,
                        help="open model's fixed rate (default: half the closed model's good/s, "
                        "telemetry on, at each gateway profile)")  # fmt: skip
    parser.add_argument("--open-cap", type=int, default=512, help="open model: max in flight")
    parser.add_argument("--search-steps", type=int, default=5)
    parser.add_argument("--search-s", type=float, default=6.0)
    parser.add_argument("--warmup-s", type=float, default=2.0)
    parser.add_argument("--idle-s", type=float, default=5.0, help="settle before idle memory")
    parser.add_argument("--profile", action="store_true", help="py-spy on the API, first on run")
    parser.add_argument("--variant", action="append", default=[],
                        help="with --variants: only this one (repeatable)")  # fmt: skip
    parser.add_argument("--no-open", action="store_true", help="skip the open-model runs")
    parser.add_argument("--no-same-rate", action="store_true",
                        help="skip telemetry on vs off at the same arrival rate")  # fmt: skip
    parser.add_argument("--two-api", action="store_true",
                        help="experiment: each round also runs on/off with a second API process "
                        "(same command line, another port; the load split over both)")  # fmt: skip
    parser.add_argument("--variants", action="store_true",
                        help="then, side by side with the stack as built: telemetry all off, "
                        f"{', '.join(VARIANTS)} "
                        "(instant gateway, --rounds each)")  # fmt: skip
    args = parser.parse_args()
    for name in args.variant or ():
        if name != ALL_OFF and name not in VARIANTS:
            parser.error(f"--variant: unknown {name!r}; known: {', '.join([ALL_OFF, *VARIANTS])}")
    args.variants = args.variants or bool(args.variant)
    if args.quick:
        args.rounds, args.seconds, args.search_steps, args.search_s = 1, 5.0, 4, 4.0
    if min(args.seconds, args.rounds, args.concurrency, args.rate or 1, args.open_cap) <= 0:
        parser.error("--seconds, --rounds, --concurrency, --rate and --open-cap must be positive")
    bench = Bench(args)
    results: dict[tuple[str, bool | str], list[Run]] = {}
    ratios: dict[str, list[float]] = {p: [] for p in PROFILES}
    two_ratios: list[float] = []
    profiled = not args.profile
    for i in range(args.rounds):
        for profile, scale in PROFILES.items():
            order = (True, False) if i % 2 == 0 else (False, True)
            pair = {}
            for telemetry in order:
                want = not profiled and telemetry and profile == "instant"
                run = bench.closed(telemetry, scale, profile=want)
                profiled = profiled or want
                pair[telemetry] = run
                results.setdefault((profile, telemetry), []).append(run)
                print(f"round {i + 1} {profile:<7} gateway, telemetry {'on ' if telemetry else 'off'}"
                      f": {run.line()}", flush=True)  # fmt: skip
            ratios[profile].append(pair[True].good_per_s / max(pair[False].good_per_s, 1e-9))
            if args.two_api and profile == "instant":
                pair = {}
                for telemetry in order:
                    run = bench.closed(telemetry, scale, api_processes=2)
                    pair[telemetry] = run
                    name = f"2 API processes, telemetry {'on' if telemetry else 'off'}"
                    results.setdefault(("instant", name), []).append(run)
                    print(f"round {i + 1} instant gateway, {name}: {run.line()}", flush=True)
                two_ratios.append(pair[True].good_per_s / max(pair[False].good_per_s, 1e-9))
    print(f"\nclosed model, {args.concurrency} checkouts in flight, {args.seconds:.0f} s per run, "
          f"{args.rounds} on/off pair(s) per profile; good = 201 + 402")  # fmt: skip
    for profile in PROFILES:
        on = statistics.median(r.good_per_s for r in results[(profile, True)])
        off = statistics.median(r.good_per_s for r in results[(profile, False)])
        p99 = statistics.median(r.raw["p99_ms"] for r in results[(profile, True)])
        ratio = statistics.median(ratios[profile])
        print(f"  {profile:<7} gateway: on {on:7.1f} good/s (p99 {p99:.0f} ms)  off {off:7.1f} "
              f"good/s  ratio on/off {ratio:.3f} (per round: "
              f"{', '.join(f'{x:.3f}' for x in ratios[profile])})")  # fmt: skip
    if two_ratios:
        on = statistics.median(
            r.good_per_s for r in results[("instant", "2 API processes, telemetry on")]
        )
        off = statistics.median(
            r.good_per_s for r in results[("instant", "2 API processes, telemetry off")]
        )
        print(f"  instant gateway, 2 API processes (experiment): on {on:7.1f} good/s  off "
              f"{off:7.1f} good/s  ratio on/off {statistics.median(two_ratios):.3f} (per round: "
              f"{', '.join(f'{x:.3f}' for x in two_ratios)})")  # fmt: skip
    if args.variants:
        side_by_side(bench, args)
    first_on, first_off = results[("instant", True)][0], results[("instant", False)][0]
    print("\nCPU ms per good checkout, per component (instant gateway, first round):")
    print_cpu_table(
        *(
            {n: 1000 * v / max(1, run.good) for n, v in run.cpu_s.items()}
            for run in (first_on, first_off)
        )
    )
    print(f"machine busy during the runs (every process, {os.cpu_count()} cores): on "
          f"{first_on.busy_cores:.2f} cores, off {first_off.busy_cores:.2f} cores")  # fmt: skip
    closed_on = {p: statistics.median(r.good_per_s for r in results[(p, True)]) for p in PROFILES}
    if not args.no_same_rate:
        print()
        same_rate(bench, args, closed_on)
    if not args.no_open:
        print()
        open_model(bench, args, closed_on)
    print(f"\nstart to every component healthy: median {statistics.median(bench.start_s):.2f} s, "
          f"max {max(bench.start_s):.2f} s over {len(bench.start_s)} starts")  # fmt: skip
    if bench.memory:
        rss = sum(v[0] for v in bench.memory.values())
        pss = sum(v[1] for v in bench.memory.values())
        parts = ", ".join(f"{n} {v[0] / 2**20:.0f}" for n, v in
                          sorted(bench.memory.items(), key=lambda kv: -kv[1][0]))  # fmt: skip
        print(f"idle memory after {args.idle_s:.0f} s (telemetry on): RSS sum {rss / 2**20:.0f} "
              f"MiB, PSS sum {pss / 2**20:.0f} MiB (shared pages once); RSS MiB: {parts}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
