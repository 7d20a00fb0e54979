"""What one layout's run recorded, and what it means (kills, blind time, alerts, verdict).

The runner fills a :class:`LayoutResult` with raw observations (samples of the
cgroup and of every component, checkout outcomes per time slice, supervisor
exits, alerts seen firing); :func:`analyse` turns them into the findings the
report shows. Kills come from the kernel's cgroup counter (``oom_kill``); each
is matched in time to a supervisor exit by SIGKILL to name the process.
"""

from __future__ import annotations

import itertools
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from paychaos.oom.layouts import MONITORING

MATCH_BEFORE_S = 1.5  # a kill counted at sample t happened in (t_prev, t]; exits are
MATCH_AFTER_S = 2.0  # noticed by the supervisor up to one poll interval later
PRESSURE_RATIO = 0.9
PRESSURE_FOR_S = 15.0  # InstanceMemoryPressure: > 90 % for 15 s
DOWN_FOR_S = 15.0  # ServiceDown: up == 0 for 15 s
SCRAPED = ("api", "collector", "prometheus", "alertmanager")


@dataclass
class Sample:
    """The instance and its components at ``t`` seconds after traffic started."""

    t: float
    usage_bytes: int
    limit_bytes: int
    oom_kills: int
    rss_bytes: dict[str, int]
    alive: dict[str, bool]
    blind: bool
    answering: dict[str, bool] = field(default_factory=dict)  # monitoring: alive and answering


@dataclass
class CheckoutSlice:
    """Checkout outcomes of one time slice of the load."""

    t_start: float
    t_end: float
    concurrency: int
    sent: int = 0
    succeeded: int = 0
    declined: int = 0
    failed: int = 0  # no answer, 500 or 503: the shop itself lost the sale
    processor_errors: int = 0  # 502/504 from the gateway simulator, in every layout
    latencies_ms: list[float] = field(default_factory=list)  # every answer (or give-up)


@dataclass
class Kill:
    """One OOM kill counted by the kernel, with the process it matched (if any)."""

    t: float
    component: str | None
    evidence: str
    named_by: str = ""  # "kernel log" (its oom-kill record), "SIGKILL exit" or "" (unnamed)


@dataclass
class AlertFinding:
    name: str
    expected: bool
    fired: bool
    note: str


@dataclass
class LayoutResult:
    """Everything recorded for one layout."""

    key: str
    title: str
    instance: str
    full_limit_bytes: int
    scale: float
    real_on_instance: tuple[str, ...]
    modelled: tuple[str, ...]
    off_instance: tuple[str, ...]
    cgroup: str = ""
    cgroup_version: int = 0
    limit_bytes: int = 0
    real_ref_bytes: int = 0
    cpu_quota_applied: bool = False
    samples: list[Sample] = field(default_factory=list)
    slices: list[CheckoutSlice] = field(default_factory=list)
    exits: list[tuple[float, str, int]] = field(default_factory=list)  # (t, component, code)
    restarts: dict[str, int] = field(default_factory=dict)
    alerts_seen: dict[str, float] = field(default_factory=dict)  # name -> first t firing
    footprint_status: dict[str, dict[str, float]] = field(default_factory=dict)
    budget: dict[str, Any] | None = None  # `paychaos budget` on the run (layout C), as JSON
    budget_text: str = ""
    budget_summary: str = ""
    interrupted: bool = False
    error: str | None = None
    bad_deploy_t: float | None = None  # when the per-order metric went live (s into the sale)
    head_series: list[tuple[float, int]] = field(default_factory=list)  # (t, head series)
    # (t, phase) each time the t3 credit balance was set: "credits spent" or "with credits"
    credit_switches: list[tuple[float, str]] = field(default_factory=list)
    # (t, credit balance, CPU quota in cores, CFS periods, throttled periods)
    credit_trace: list[tuple[float, float, float, int, int]] = field(default_factory=list)
    credit_phases: list[dict[str, float | str]] = field(default_factory=list)
    # the dashboard's heavy panels evaluated by the real Prometheus: one row per query
    # {t, panel, seconds, ok, prometheus_rss_before, prometheus_rss_after, head_series}
    heavy_queries: list[dict[str, float | str | bool]] = field(default_factory=list)
    # the kernel log's oom-kill records for this cgroup: (t, task, pid, component or None);
    # kernel_log says whether it could be read ("" = read, else why not)
    kernel_kills: list[tuple[float, str, int, str | None]] = field(default_factory=list)
    kernel_log: str = ""
    # --until-kill: why the sale ended early, and the series target it was driven to
    ended_by: str = ""
    series_target: int | None = None
    series_target_from: str = ""
    # filled by analyse()
    blind_by_signal: dict[str, float] = field(default_factory=dict)  # signal -> seconds
    pressure: dict[str, float] = field(default_factory=dict)  # checkouts before/after the deploy
    kills: list[Kill] = field(default_factory=list)
    oom_kills: int = 0
    blind_s: float = 0.0
    prometheus_down_s: float = 0.0
    alerts: list[AlertFinding] = field(default_factory=list)
    verdict: str = ""
    could_not_fire: list[str] = field(default_factory=list)  # alerts lost to the blind time

    @property
    def sent(self) -> int:
        return sum(s.sent for s in self.slices)

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.slices)

    @property
    def processor_errors(self) -> int:
        return sum(s.processor_errors for s in self.slices)

    @property
    def failed_share(self) -> float:
        return self.failed / self.sent if self.sent else 0.0

    @property
    def peak_usage_bytes(self) -> int:
        return max((s.usage_bytes for s in self.samples), default=0)

    @property
    def peak_head_series(self) -> int:
        return max((n for _t, n in self.head_series), default=0)

    @property
    def first_kill_t(self) -> float | None:
        return min((k.t for k in self.kills), default=None)

    @property
    def peak_ratio(self) -> float:
        return self.peak_usage_bytes / self.limit_bytes if self.limit_bytes else 0.0


def match_kills(result: LayoutResult) -> list[Kill]:
    """Kernel kill-counter increments, each named by the kernel's own log record of the kill
    (task and pid) when it could be read, else by a SIGKILL exit close in time."""
    sigkills = [(t, name) for t, name, code in result.exits if code == -signal.SIGKILL]
    used: set[int] = set()
    used_kernel: set[int] = set()
    kills: list[Kill] = []
    prev_t, prev_count = 0.0, 0
    for sample in result.samples:
        lo, hi = prev_t - MATCH_BEFORE_S, sample.t + MATCH_AFTER_S
        for _ in range(max(0, sample.oom_kills - prev_count)):
            counted = f"cgroup oom_kill +1 at {sample.t:.1f}s"
            kernel = next(
                (
                    i
                    for i, (t, _task, _pid, _comp) in enumerate(result.kernel_kills)
                    if i not in used_kernel and lo <= t <= hi
                ),
                None,
            )
            if kernel is not None:
                used_kernel.add(kernel)
                t, task, pid, comp = result.kernel_kills[kernel]
                # the supervisor's SIGKILL record of the same process is used up too
                for i, (st, name) in enumerate(sigkills):
                    if i not in used and name == comp and lo <= st <= hi:
                        used.add(i)
                        break
                kills.append(
                    Kill(
                        t,
                        comp or task,
                        f"{counted}; kernel log: killed process {pid} ({task})"
                        + (f" = {comp}" if comp and comp != task else ""),
                        "kernel log",
                    )
                )
                continue
            match = None
            for i, (t, _name) in enumerate(sigkills):
                if i not in used and lo <= t <= hi:
                    match = i
                    break
            if match is not None:
                used.add(match)
                t, name = sigkills[match]
                kills.append(Kill(t, name, f"{counted}; {name} killed by SIGKILL", "SIGKILL exit"))
            else:
                kills.append(
                    Kill(
                        sample.t,
                        None,
                        f"{counted}; no supervised process exited "
                        "(a child process, e.g. a worker or backend, was killed)",
                    )
                )
        prev_t, prev_count = sample.t, max(prev_count, sample.oom_kills)
    return kills


def _longest_run(samples: list[Sample], predicate: Callable[[Sample], object]) -> float:
    best = run = 0.0
    prev_t: float | None = None
    for sample in samples:
        ok = predicate(sample)
        step = sample.t - prev_t if prev_t is not None else 0.0
        run = run + step if ok else 0.0
        best = max(best, run)
        prev_t = sample.t
    return best


def _is_down(name: str) -> Callable[[Sample], bool]:
    return lambda sample: not sample.alive.get(name, True)


# which components a signal needs (the ones on the instance; the rest never failed here)
SIGNAL_NEEDS = {
    "metrics": ("prometheus",),
    "alerts": ("prometheus", "alertmanager"),
    "traces": ("collector",),
    "logs": ("collector",),
}


def _up(sample: Sample, name: str) -> bool:
    return sample.answering.get(name, sample.alive.get(name, True))


def _outage_s(
    result: LayoutResult, names: list[str], up: Callable[[Sample, str], bool] = _up
) -> float:
    """Seconds in which a component of ``names`` was down (not ``up``), as the union of:

    - each interval between two samples that starts with one of them down;
    - each death on record (the kernel's kill, the supervisor's exit), from then to the
      first sample after it that saw that component up again (or the last sample).

    Samples come every half second; the supervisor restarts a dead component within
    its poll interval, and a Prometheus with a small head is ready again in well under a
    second: a kill and restart between two samples was never seen down by them (CI
    counted 0 s blind for a Prometheus the kernel had killed). Its death is on record."""
    samples = result.samples
    spans = [
        (before.t, after.t)
        for before, after in itertools.pairwise(samples)
        if any(not up(before, n) for n in names)
    ]
    deaths = [(t, n) for t, n, _code in result.exits if n in names]
    deaths += [(k.t, k.component) for k in result.kills if k.component in names]
    for t, name in deaths:
        back = next((s.t for s in samples if s.t > t and up(s, name)), None)
        end = back if back is not None else max([t, *(s.t for s in samples[-1:])])
        spans.append((t, end))
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        start = max(start, reach)
        if end > start:
            total += end - start
            reach = end
    return total


def blind_by_signal(result: LayoutResult) -> dict[str, float]:
    """Seconds each signal was lost: a component it needs was dead or not answering."""
    out = {}
    for signal_name, needs in SIGNAL_NEEDS.items():
        mine = [n for n in needs if n in result.real_on_instance]
        out[signal_name] = _outage_s(result, mine)
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pressure_figures(result: LayoutResult) -> dict[str, float]:
    """Checkouts before the bad deploy and from it to the end: sent, failed, p95 (ms)."""
    if result.bad_deploy_t is None:
        return {}
    # a slice belongs to the side it started on (the driver's first slice may straddle)
    before = [s for s in result.slices if s.t_start < result.bad_deploy_t]
    after = [s for s in result.slices if s.t_start >= result.bad_deploy_t]
    out: dict[str, float] = {}
    for name, part in (("before", before), ("after", after)):
        out[f"{name}_sent"] = sum(s.sent for s in part)
        out[f"{name}_failed"] = sum(s.failed for s in part)
        out[f"{name}_p95_ms"] = percentile([ms for s in part for ms in s.latencies_ms], 0.95)
    return out


def analyse(result: LayoutResult) -> LayoutResult:
    """Fill kills, blind time, alert findings and the verdict from the observations."""
    samples = result.samples
    result.kills = match_kills(result)
    result.oom_kills = max((s.oom_kills for s in samples), default=0)
    watched = [n for n in MONITORING if any(n in s.answering for s in samples)]
    result.blind_s = _outage_s(result, watched)  # what Sample.blind says, deaths added
    result.prometheus_down_s = _outage_s(result, ["prometheus"], lambda s, n: s.alive.get(n, True))
    prom_note = (
        f"Prometheus was down {result.prometheus_down_s:.1f}s: no rule was evaluated then"
        if result.prometheus_down_s
        else ""
    )
    findings = []

    def finding(name: str, expected: bool, why: str) -> None:
        fired = name in result.alerts_seen
        if fired:
            note = f"fired at {result.alerts_seen[name]:.0f}s"
        elif expected:
            note = f"{why}; did NOT fire" + (f" ({prom_note})" if prom_note else "")
        else:
            note = "not expected, did not fire"
        findings.append(AlertFinding(name, expected, fired, note))

    finding("InstanceOOMKill", result.oom_kills > 0, f"{result.oom_kills} OOM kill(s)")
    pressure = _longest_run(
        samples, lambda s: s.limit_bytes and s.usage_bytes / s.limit_bytes > PRESSURE_RATIO
    )
    finding(
        "InstanceMemoryPressure",
        pressure >= PRESSURE_FOR_S,
        f"memory > 90 % of the limit for {pressure:.0f}s",
    )
    down = {
        name: _longest_run(samples, _is_down(name))
        for name in SCRAPED
        if name in result.real_on_instance
    }
    long_down = [name for name, secs in down.items() if secs >= DOWN_FOR_S]
    finding("ServiceDown", bool(long_down), f"down >= 15s: {', '.join(long_down) or '-'}")
    known = {f.name for f in findings} | (set(SERIES_RULES) if result.bad_deploy_t else set())
    for name in sorted(set(result.alerts_seen) - known):
        findings.append(
            AlertFinding(name, False, True, f"fired at {result.alerts_seen[name]:.0f}s")
        )
    if result.bad_deploy_t is not None:
        findings.extend(_series_growth_finding(result, name) for name in SERIES_RULES)
    result.alerts = findings
    result.blind_by_signal = blind_by_signal(result)
    result.could_not_fire = could_not_fire(result)
    result.pressure = pressure_figures(result)
    result.credit_phases = credit_phases(result)
    result.verdict = verdict(result)
    return result


# the series-growth rules (rules/capacity.yml) and how long they need at least from the
# start of the growth: ActiveSeriesGrowth compares with 5 min ago, then waits 2 min;
# ActiveSeriesSurge wants > 1000 in a minute and > 100 per 15 s, for 15 s
SERIES_RULES = {"ActiveSeriesSurge": 15 + 2, "ActiveSeriesGrowth": 5 * 60 + 2 * 60}
SERIES_RULE_HOW = {
    "ActiveSeriesSurge": "it wants growth over 15 s and 1 min, then waits 15 s",
    "ActiveSeriesGrowth": "it compares with 5 min ago and then waits 2 min",
}


def _series_growth_finding(result: LayoutResult, name: str) -> AlertFinding:
    """Did a series-growth rule warn, and how long before the first kill?"""
    kill_t = result.first_kill_t
    deploy_t = result.bad_deploy_t or 0.0
    if name in result.alerts_seen:
        t = result.alerts_seen[name]
        when = (
            f"{kill_t - t:.0f}s BEFORE the first kill"
            if kill_t is not None and t < kill_t
            else ("after the first kill" if kill_t is not None else "no kill followed")
        )
        return AlertFinding(
            name, True, True, f"fired at {t:.0f}s ({t - deploy_t:.0f}s after the deploy), {when}"
        )
    span = result.samples[-1].t if result.samples else 0.0
    why = f"{SERIES_RULE_HOW[name]} (>= {SERIES_RULES[name]}s); this run lasted {span:.0f}s"
    if kill_t is not None:
        why += f" and the kill came {kill_t - deploy_t:.0f}s after the deploy"
    return AlertFinding(name, True, False, f"did NOT fire: {why}")


def could_not_fire(result: LayoutResult) -> list[str]:
    """The alerts the monitoring could not send in time because it was itself down: a
    killed Prometheus evaluates nothing, the alert about itself included."""
    if not result.blind_by_signal.get("alerts"):
        return []
    out = []
    prom_killed = any(k.component == "prometheus" for k in result.kills)
    if prom_killed or result.prometheus_down_s:
        out.append(
            "ServiceDown (job prometheus): the alert about Prometheus is evaluated by "
            "Prometheus itself; nothing fired it while it was down"
        )
    first = result.first_kill_t
    for name in ("InstanceOOMKill", "PrometheusRestarted"):
        if first is None:
            break
        fired = result.alerts_seen.get(name)
        if fired is None:
            out.append(
                f"{name}: did NOT fire before the run ended ({result.samples[-1].t - first:.0f}s after the kill)"
            )
        elif fired > first:
            out.append(
                f"{name}: only at {fired:.0f}s, {fired - first:.0f}s after the kill (once Prometheus was back)"
            )
    for f in result.alerts:
        if (
            f.expected
            and not f.fired
            and f.name not in SERIES_RULES
            and not any(line.startswith(f.name) for line in out)
        ):
            out.append(f"{f.name}: {f.note}")
    return out


def verdict(result: LayoutResult) -> str:
    if result.error:
        return f"ERROR: {result.error}"
    if len(result.credit_phases) == 2:
        return _credits_verdict(result)
    if result.bad_deploy_t is not None:
        return _explosion_verdict(result)
    peak = f"peak {result.peak_ratio:.0%} of the limit"
    p95 = percentile([ms for s in result.slices for ms in s.latencies_ms], 0.95)
    if result.oom_kills:
        victims = sorted({k.component or "a child process" for k in result.kills})
        blind = f", monitoring blind {result.blind_s:.0f}s" if result.blind_s else ""
        return (
            f"OOM: {result.oom_kills} kernel OOM kill(s) ({', '.join(victims)}), "
            f"{result.failed} failed checkouts ({result.failed_share:.1%}), checkout p95 "
            f"{p95:.0f} ms{blind}"
        )
    headroom = max(0, result.limit_bytes - result.peak_usage_bytes) / 2**20
    left = f"{peak} ({headroom:.0f} MiB headroom left)"
    if result.peak_ratio > PRESSURE_RATIO:
        return (
            f"survives at the edge: no OOM kill, {left}, {result.failed} failed checkouts, "
            f"checkout p95 {p95:.0f} ms"
        )
    return (
        f"survives: no OOM kill, {left}, {result.failed} failed checkouts, "
        f"checkout p95 {p95:.0f} ms"
    )


def _explosion_verdict(result: LayoutResult) -> str:
    series = f"head series peaked at {result.peak_head_series:,}"
    p = result.pressure
    checkouts = (
        f"{p.get('after_failed', 0):.0f} of {p.get('after_sent', 0):.0f} checkouts failed after "
        f"the deploy, p95 {p.get('after_p95_ms', float('nan')):.0f} ms "
        f"(before: {p.get('before_p95_ms', float('nan')):.0f} ms)"
    )
    if result.oom_kills:
        victims = list(dict.fromkeys(k.component or "a child process" for k in result.kills))
        first = result.first_kill_t or 0.0
        since = first - (result.bad_deploy_t or 0.0)
        blind = result.blind_by_signal
        return (
            f"OOM-KILLED: the kernel killed {', then '.join(victims)} ({result.oom_kills} kill(s), "
            f"first at {first:.0f}s, {since:.0f}s after the bad deploy); {series}; metrics "
            f"blind {blind.get('metrics', 0):.0f}s, alerts blind {blind.get('alerts', 0):.0f}s; "
            f"{checkouts}"
        )
    headroom = max(0, result.limit_bytes - result.peak_usage_bytes) / 2**20
    target = ""
    if result.series_target is not None:
        reached = result.peak_head_series >= result.series_target
        target = (
            f" ({'reached' if reached else 'did NOT reach'} the {result.series_target:,} "
            f"series {result.series_target_from or 'a killed layout'} peaked at)"
        )
    return (
        f"NOT KILLED: no OOM kill, {series}{target}; peak {result.peak_ratio:.0%} of the "
        f"limit, {headroom:.0f} MiB headroom left; {checkouts}"
    )


def credit_phases(result: LayoutResult) -> list[dict[str, float | str]]:
    """Checkouts with the t3 balance spent, then full (each pooled over its blocks): sent,
    failed, p50/p95 (ms), the quota applied and the share of CFS periods throttled."""
    switches = result.credit_switches
    if not switches:
        return []
    blocks = [
        (t, switches[i + 1][0] if i + 1 < len(switches) else 1e12, name)
        for i, (t, name) in enumerate(switches)
    ]
    trace = result.credit_trace
    phases: list[dict[str, float | str]] = []
    for name in ("credits spent", "with credits"):
        spans = [(lo, hi) for lo, hi, phase in blocks if phase == name]
        part = [
            s
            for s in result.slices
            if any(lo - 0.5 <= s.t_start and s.t_end <= hi + 0.5 for lo, hi in spans)
        ]
        latencies = [ms for s in part for ms in s.latencies_ms]
        inside: list[tuple[float, float, float, int, int]] = []
        periods = throttled = 0
        for lo, hi in spans:
            rows = [row for row in trace if lo <= row[0] < hi - 0.05]  # rows are rounded
            inside += rows
            if len(rows) > 1:
                periods += rows[-1][3] - rows[0][3]
                throttled += rows[-1][4] - rows[0][4]
        lowest = min((row[2] for row in inside), default=float("nan"))
        phases.append(
            {
                "phase": name,
                "blocks": float(len(spans)),
                "sent": float(sum(s.sent for s in part)),
                "failed": float(sum(s.failed for s in part)),
                "p50_ms": percentile(latencies, 0.5),
                "p95_ms": percentile(latencies, 0.95),
                "quota_cores": lowest,
                # share of the phase held at the lowest quota (a spent balance earns back
                # while the instance uses less than its baseline, and bursts on it briefly)
                "at_min_quota_share": (
                    sum(1 for row in inside if row[2] == lowest) / len(inside) if inside else 0.0
                ),
                "throttled_share": throttled / periods if periods else 0.0,
            }
        )
    return phases


def _credits_verdict(result: LayoutResult) -> str:
    spent, with_c = result.credit_phases
    ratio = float(spent["p95_ms"]) / float(with_c["p95_ms"]) if with_c["p95_ms"] else float("nan")
    return (
        f"NOISY NEIGHBOUR: checkout p95 {float(spent['p95_ms']):.0f} ms with the t3 credits "
        f"spent (quota {float(spent['quota_cores']):g} cores "
        f"{float(spent['at_min_quota_share']):.0%} of the time, throttled in "
        f"{float(spent['throttled_share']):.0%} of periods) vs {float(with_c['p95_ms']):.0f} ms "
        f"with credits ({ratio:.1f}x); failed {float(spent['failed']):.0f} vs "
        f"{float(with_c['failed']):.0f}"
    )
