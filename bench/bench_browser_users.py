"""What one browser shopper costs: memory and CPU of its Chromium, per user, in a real run.

A headless Locust (``locustfiles/checkout.py``, no ``--host``: it starts the embedded
stack with the checkout page) runs ``--browsers`` users, all of them browser shoppers
(``-u N --browser-users N``). Every second the bench finds each browser (a Chromium
whose parent is the Locust process; each runs in its own process group) and sums,
over its process group, PSS (shared pages split between the processes mapping them:
the memory the browser adds to the machine), RSS (shared pages counted once per
process: an over-count) and the growth of each process's user+system CPU time since
the last reading (renderers come and go with pages), from ``/proc``. After a warm-up
(``--warmup-s``, browsers starting and the first visits), it reports per browser: PSS
mean and peak, RSS peak, processes, CPU as a share of one core over the window, and
visits (clicks on *Pay*) per minute from Locust's stats. The Locust process's own CPU
over the window is printed too (its greenlets drive the browsers over DevTools).

Think times are the shoppers' (``--think-time-scale``, 1 = a person's pace: about 8 s a
visit); 0 measures a browser clicking as fast as the page answers.

    .venv/bin/python bench/bench_browser_users.py [--browsers 2] [--seconds 60] [--think-time-scale 1]
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from paychaos.traffic.chromium import CpuMeter, Usage, group_cpu, group_usage  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def browser_groups(parent: int) -> list[int]:
    """Process groups of the Chromiums whose parent is ``parent``."""
    groups = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if fields and int(fields[1]) == parent and comm.startswith("chromium"):
            groups.append(int(fields[2]))
    return sorted(set(groups))


def cpu_s(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICK if fields else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--browsers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--warmup-s", type=int, default=15)
    parser.add_argument("--think-time-scale", type=float, default=1.0)
    args = parser.parse_args()
    if not 1 <= args.browsers <= 16 or args.seconds <= args.warmup_s + 5:
        parser.error("--browsers 1..16 and --seconds > --warmup-s + 5")
    with tempfile.TemporaryDirectory(prefix="paychaos-bench-browsers-") as tmp:
        argv = [
            *(sys.executable, str(REPO / "locustfiles" / "checkout.py"), "--headless"),
            *("-u", str(args.browsers), "-r", str(args.browsers)),
            *("--browser-users", str(args.browsers), "--run-time", f"{args.seconds}s"),
            *("--think-time-scale", str(args.think_time_scale), "--js-error-rate", "0"),
            *("--stack-dir", f"{tmp}/stack", "--ledger-dir", f"{tmp}/ledger"),
            *("--csv", f"{tmp}/stats", "--only-summary"),
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        log = open(f"{tmp}/locust.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        samples: dict[int, list[Usage]] = {}
        meters: dict[int, CpuMeter] = {}
        cpu_at: dict[int, list[float]] = {}
        locust_cpu: list[tuple[float, float]] = []
        start = time.monotonic()
        try:
            while proc.poll() is None and time.monotonic() - start < args.seconds + 120:
                time.sleep(1)
                since = time.monotonic() - start
                if since < args.warmup_s + 8:  # the stack starts (about 8 s) before the users
                    continue
                for group in browser_groups(proc.pid):
                    samples.setdefault(group, []).append(group_usage(group))
                    meter = meters.setdefault(group, CpuMeter())
                    cpu_at.setdefault(group, []).append(meter.read(group_cpu(group)))
                locust_cpu.append((time.monotonic(), cpu_s(proc.pid)))
            proc.wait(timeout=args.seconds + 120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                proc.wait(timeout=60)
            log.close()
        output = Path(f"{tmp}/locust.log").read_text()
        if proc.returncode != 0:
            print(output[-3000:])
            print(f"locust exited {proc.returncode}")
            return 1
        with open(f"{tmp}/stats_stats.csv") as fh:
            rows = {row["Name"]: row for row in csv.DictReader(fh)}
    visits = int(rows.get("checkout page: pay", {}).get("Request Count", 0) or 0)
    print(
        f"{args.browsers} browser users, {args.seconds} s (window after {args.warmup_s} s), "
        f"think-time-scale {args.think_time_scale:g}, {os.cpu_count()} cores"
    )
    print(
        f"{'browser':>8} {'samples':>7} {'procs':>5} {'PSS mean':>9} {'PSS peak':>9} "
        f"{'RSS peak':>9} {'CPU %core':>9}"
    )
    cpu_shares = []
    pss_means = []
    for i, (group, usage) in enumerate(sorted(samples.items())):
        steady = [u for u in usage if u.processes > 0]
        if len(steady) < 5:
            continue
        used = cpu_at[group]
        share = (used[-1] - used[0]) / (len(used) - 1) * 100  # readings about 1 s apart
        mean = statistics.mean(u.pss_bytes for u in steady) / 2**20
        cpu_shares.append(share)
        pss_means.append(mean)
        print(
            f"{i + 1:>8} {len(steady):>7} {max(u.processes for u in steady):>5} "
            f"{mean:>7.0f}Mi {max(u.pss_bytes for u in steady) / 2**20:>7.0f}Mi "
            f"{max(u.rss_bytes for u in steady) / 2**20:>7.0f}Mi {share:>8.1f}%"
        )
    if not cpu_shares:
        print("no browser sampled long enough")
        return 1
    (t0, c0), (t1, c1) = locust_cpu[0], locust_cpu[-1]
    print(
        f"per browser user: PSS {statistics.mean(pss_means):.0f} MiB, CPU "
        f"{statistics.mean(cpu_shares):.1f}% of one core; "
        f"{visits / args.browsers / (args.seconds / 60):.1f} visits/min each; "
        f"Locust process CPU {(c1 - c0) / (t1 - t0) * 100:.1f}% of one core"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
