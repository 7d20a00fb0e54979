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


@dataclass
class Kill:
    """One OOM kill counted by the kernel, with the process it matched (if any)."""

    t: float
    component: str | None
    evidence: str


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
    # filled by analyse()
    kills: list[Kill] = field(default_factory=list)
    oom_kills: int = 0
    blind_s: float = 0.0
    prometheus_down_s: float = 0.0
    alerts: list[AlertFinding] = field(default_factory=list)
    verdict: str = ""

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
    def peak_ratio(self) -> float:
        return self.peak_usage_bytes / self.limit_bytes if self.limit_bytes else 0.0


def match_kills(result: LayoutResult) -> list[Kill]:
    """Kernel kill-counter increments, each named by a SIGKILL exit close in time."""
    sigkills = [(t, name) for t, name, code in result.exits if code == -signal.SIGKILL]
    used: set[int] = set()
    kills: list[Kill] = []
    prev_t, prev_count = 0.0, 0
    for sample in result.samples:
        for _ in range(max(0, sample.oom_kills - prev_count)):
            match = None
            for i, (t, _name) in enumerate(sigkills):
                if i not in used and prev_t - MATCH_BEFORE_S <= t <= sample.t + MATCH_AFTER_S:
                    match = i
                    break
            if match is not None:
                used.add(match)
                t, name = sigkills[match]
                kills.append(
                    Kill(
                        t, name, f"cgroup oom_kill +1 at {sample.t:.1f}s; {name} killed by SIGKILL"
                    )
                )
            else:
                kills.append(
                    Kill(
                        sample.t,
                        None,
                        f"cgroup oom_kill +1 at {sample.t:.1f}s; no supervised process exited "
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


def _time_where(samples: list[Sample], predicate: Callable[[Sample], object]) -> float:
    total = 0.0
    for before, after in itertools.pairwise(samples):
        if predicate(before):
            total += after.t - before.t
    return total


def _is_down(name: str) -> Callable[[Sample], bool]:
    return lambda sample: not sample.alive.get(name, True)


def analyse(result: LayoutResult) -> LayoutResult:
    """Fill kills, blind time, alert findings and the verdict from the observations."""
    samples = result.samples
    result.kills = match_kills(result)
    result.oom_kills = max((s.oom_kills for s in samples), default=0)
    result.blind_s = _time_where(samples, lambda s: s.blind)
    result.prometheus_down_s = _time_where(samples, lambda s: not s.alive.get("prometheus", True))
    prom_note = (
        f"Prometheus was down {result.prometheus_down_s:.0f}s: no rule was evaluated then"
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
    for name in sorted(set(result.alerts_seen) - {f.name for f in findings}):
        findings.append(
            AlertFinding(name, False, True, f"fired at {result.alerts_seen[name]:.0f}s")
        )
    result.alerts = findings
    result.verdict = verdict(result)
    return result


def verdict(result: LayoutResult) -> str:
    if result.error:
        return f"ERROR: {result.error}"
    peak = f"peak {result.peak_ratio:.0%} of the limit"
    if result.oom_kills:
        victims = sorted({k.component or "a child process" for k in result.kills})
        blind = f", monitoring blind {result.blind_s:.0f}s" if result.blind_s else ""
        return (
            f"OOM: {result.oom_kills} kernel OOM kill(s) ({', '.join(victims)}), "
            f"{result.failed} failed checkouts ({result.failed_share:.1%}){blind}"
        )
    if result.peak_ratio > PRESSURE_RATIO:
        return f"survives at the edge: no OOM kill, {peak}, {result.failed} failed checkouts"
    return f"survives: no OOM kill, {peak}, {result.failed} failed checkouts"
