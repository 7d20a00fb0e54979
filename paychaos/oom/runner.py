"""Run the flash sale against one layout inside a real memory cgroup, and record it.

For each layout: create the instance's cgroup (``paychaos-oom-...``), start the
embedded stack with the layout's components born inside it (the rest outside),
set the scaled limit, drive a ramp of checkouts with :func:`paychaos.loadgen.drive`
while sampling the cgroup, the components and Prometheus' alerts, then stop
everything and remove the cgroup — from ``finally``, also on failure or Ctrl-C.

How ``--scale`` works (real processes cannot be shrunk): the modelled footprints
are multiplied by ``scale``; the real components on the instance keep their
real memory ``R`` (measured, as resident memory, once the stack is up); the
cgroup limit becomes ``R + scale * (L - R)`` for an instance of ``L`` bytes.
So the room the modelled components compete for is scaled exactly like them,
and at ``scale = 1`` the limit is the instance's memory.

Two other runs use a steady rate instead of the ramp, and the traffic really sent:

- ``bad_deploy_at_s`` (the cardinality explosion): at that time the running API starts
  labelling a checkout histogram by order id (``stack/api/order_label.py``); the runner
  reads ``prometheus_tsdb_head_series`` from Prometheus' own ``/metrics`` and, with
  ``dashboard_every_s``, has the real Prometheus evaluate the dashboard's heavy panels;
- ``credits`` (noisy neighbour): the t3 CPU credit balance (:mod:`paychaos.oom.credits`)
  is earned and spent from the cgroup's CPU use and applied as its CPU quota, set spent,
  full, full, spent over four equal blocks (ABBA, so a drift weighs on both phases).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from paychaos.budget import load_limits, parse_explosion, run_budget, sources_of, to_json
from paychaos.budget.project import DEFAULT_EXPLOSION
from paychaos.budget.report import render_text, summary_line
from paychaos.contracts.domain import DEFAULT_MIX
from paychaos.contracts.errors import PaychaosError
from paychaos.loadgen import drive
from paychaos.oom.credits import T3_CREDITS, CreditBalance
from paychaos.oom.kmsg import KernelOomLog
from paychaos.oom.layouts import MONITORING, Layout
from paychaos.oom.results import CheckoutSlice, LayoutResult, Sample, analyse
from paychaos.stack.cgroups import CgroupError, MemoryCgroup, cleanup_stale
from paychaos.stack.embedded import REPO_ROOT, EmbeddedStack, StackConfig, StackPorts
from paychaos.stack.instance import process_tree
from paychaos.stack.monitoring.promapi import PrometheusClient
from paychaos.stack.process import ProcessSpec
from paychaos.stack.state import admin_token_file
from paychaos.stack.supervisor import probe

SAMPLE_INTERVAL_S = 0.5
ALERT_POLL_S = 2.0
SETTLE_S = 3.0
AFTER_KILL_S = 12.0  # --until-kill: watched after the kill (restart, blind time, alerts)
Progress = Callable[[str], None]
_HEAD_SERIES = re.compile(r"^prometheus_tsdb_head_series ([0-9.e+]+)$", re.MULTILINE)


@dataclass(frozen=True)
class Stage:
    """``rate_per_s`` checkouts arrive each second for ``duration_s`` (an open model:
    arrivals do not wait for answers, so a slow machine or a struggling stack does not
    quietly lower the load the footprint model sees); ``concurrency`` caps what is in flight."""

    rate_per_s: float
    duration_s: float
    concurrency: int = 64


@dataclass(frozen=True)
class TrafficPlan:
    """A flash sale: stages of rising arrival rate, then a quiet tail to watch recovery."""

    stages: tuple[Stage, ...] = (Stage(5, 8), Stage(20, 8), Stage(45, 12), Stage(70, 16))
    tail_s: float = 8.0
    slice_s: float = 2.0
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.stages)

    @classmethod
    def quick(cls) -> TrafficPlan:
        """A shorter ramp for CI."""
        return cls(stages=(Stage(10, 4), Stage(35, 6), Stage(70, 12)), tail_s=6.0)

    @classmethod
    def credits(cls, phase_s: float = 30.0, rate_per_s: float = 40.0) -> TrafficPlan:
        """The noisy-neighbour run: the same steady rate in four blocks of ``phase_s / 2``
        (credits spent, full, full, spent: ABBA, so that a drift over the run — series,
        tables, this machine's other work — weighs on both phases alike), 5 s slices that
        never straddle a switch."""
        block = Stage(rate_per_s, phase_s / 2)
        return cls(stages=(block,) * len(CREDIT_ORDER), tail_s=2.0, slice_s=5.0)

    @classmethod
    def explosion(cls, duration_s: float = 70.0) -> TrafficPlan:
        """The bad-deploy run: a steady 40 checkouts/s (what two shared cores sustain
        with the whole stack on them), in 5 s slices (fewer driver restarts)."""
        return cls(stages=(Stage(40, duration_s),), tail_s=6.0, slice_s=5.0)


@dataclass(frozen=True)
class RunSettings:
    scale: float = 0.1
    traffic_factor: float = 1.0
    plan: TrafficPlan = field(default_factory=TrafficPlan)
    state_dir: Path = Path(".paychaos/oom-demo")
    scrape_interval_s: float = 2.0
    bad_deploy_at_s: float | None = None  # the per-order metric goes live this far into the sale
    credits: bool = False  # noisy neighbour: first half with t3 credits, second half spent
    dashboard_every_s: float | None = None  # the heavy panels, every N s from the bad deploy
    # --until-kill: a layout's sale ends AFTER_KILL_S after its first kernel OOM kill, and a
    # layout with a ``series_target`` ends AFTER_KILL_S after its Prometheus holds that many
    # head series (what a killed layout reached); the plan's duration stays the bound
    until_kill: bool = False
    series_target: int | None = None
    series_target_from: str = ""  # the layout whose peak set the target


def footprint_specs(layout: Layout, cfg: StackConfig, settings: RunSettings) -> list[ProcessSpec]:
    """One ``python -m paychaos.stack.footprint`` process per modelled component."""
    state = cfg.state_dir.resolve()
    specs = []
    for component in layout.modelled:
        specs.append(
            ProcessSpec(
                name=component,
                argv=(
                    cfg.python,
                    "-m",
                    "paychaos.stack.footprint",
                    "--component",
                    component,
                    "--scale",
                    f"{settings.scale:g}",
                    "--traffic-factor",
                    f"{settings.traffic_factor:g}",
                    "--prometheus-url",
                    f"http://127.0.0.1:{cfg.ports.prometheus}",
                    "--collector-url",
                    f"http://127.0.0.1:{cfg.ports.collector}",
                    "--status-file",
                    str(state / f"footprint-{component}.json"),
                ),
                env={"PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"},
                cwd=str(REPO_ROOT),
                metrics_path=None,
                stop_timeout_s=2.0,
                restart=cfg.restart,
            )
        )
    return specs


class _Load(threading.Thread):
    """Drives the plan in slices, recording outcomes per slice."""

    def __init__(
        self,
        api_url: str,
        plan: TrafficPlan,
        t0: float,
        stop: threading.Event,
        sale_over: threading.Event | None = None,
    ) -> None:
        super().__init__(name="oom-load", daemon=True)
        self.api_url, self.plan, self.t0, self.stop_event = api_url, plan, t0, stop
        self.sale_over = sale_over or threading.Event()  # the sale ended early (--until-kill)
        self.slices: list[CheckoutSlice] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for stage in self.plan.stages:
                stage_end = time.monotonic() + stage.duration_s
                while (
                    not self.stop_event.is_set()
                    and not self.sale_over.is_set()
                    and time.monotonic() < stage_end
                ):
                    self._slice(stage, min(self.plan.slice_s, stage_end - time.monotonic()))
        except BaseException as exc:  # reported by the runner, never lost
            self.error = exc

    def _slice(self, stage: Stage, duration_s: float) -> None:
        if duration_s <= 0.05:
            return
        start = time.monotonic()
        result = asyncio.run(
            drive(
                self.api_url,
                total=4096,
                concurrency=stage.concurrency,
                rate_per_s=stage.rate_per_s,
                mix=self.plan.mix,
                max_duration_s=duration_s,
                request_timeout_s=5.0,
            )
        )
        record = CheckoutSlice(start - self.t0, time.monotonic() - self.t0, stage.concurrency)
        record.latencies_ms = [round(ms, 2) for ms in result.latencies_ms]
        for (_method, code), n in result.by_method_status.items():
            record.sent += n
            if code == 201:
                record.succeeded += n
            elif code == 402:
                record.declined += n
            elif code in (502, 504):
                record.processor_errors += n
            elif code == 0 or code >= 500:
                record.failed += n
        self.slices.append(record)


def anon_rss_bytes(pid: int) -> int:
    """Resident memory charged to the process alone: ``RssAnon + RssShmem`` (the
    footprints' anonymous ``mmap`` is shared-anonymous, i.e. shmem). Plain RSS also
    counts shared library pages, charged once to whichever group touched them first,
    so RSS would sum to more than the cgroup's usage."""
    total = 0
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("RssAnon:", "RssShmem:")):
                    total += int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
    return total


def _rss_of(stack: EmbeddedStack, names: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for name in names:
        comp = stack.supervisor.components.get(name)
        pid = comp.pid if comp is not None and comp.alive else None
        out[name] = sum(anon_rss_bytes(p) for p in process_tree([pid])) if pid else 0
    return out


def _sample(stack: EmbeddedStack, cg: MemoryCgroup, layout: Layout, t: float) -> Sample:
    comps = stack.supervisor.components
    answering = {
        n: comps[n].alive and probe(comps[n].spec, timeout_s=0.3)
        for n in (*MONITORING, "alertmanager")
        if n in comps
    }
    blind = any(not answering[n] for n in MONITORING if n in answering)
    return Sample(
        t=t,
        usage_bytes=cg.usage_bytes(),
        limit_bytes=cg.limit_bytes(),
        oom_kills=cg.oom_kills(),
        rss_bytes=_rss_of(stack, layout.on_instance),
        alive={name: comp.alive for name, comp in comps.items()},
        blind=blind,
        answering=answering,
    )


def head_series(prometheus_url: str) -> int | None:
    """``prometheus_tsdb_head_series`` read from Prometheus' own ``/metrics`` (no query: a
    query would cost the struggling Prometheus memory too); None when it does not answer."""
    try:
        with urllib.request.urlopen(f"{prometheus_url}/metrics", timeout=1.0) as resp:
            text = resp.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    match = _HEAD_SERIES.search(text)
    return int(float(match.group(1))) if match else None


def deploy_order_label(api_url: str, state_dir: Path, ttl_s: float) -> str:
    """Switch the running API to the bad deploy's per-order metric for ``ttl_s`` (it
    rolls itself back at the TTL); returns what went wrong, or "" on success."""
    token = admin_token_file(state_dir).read_text().strip()
    req = urllib.request.Request(
        f"{api_url}/admin/order-label",
        data=json.dumps({"ttl_s": round(ttl_s, 1)}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=5.0) as resp:
            return "" if resp.status == 201 else f"the API answered {resp.status}"
    except (OSError, ValueError) as exc:
        return f"the API refused the bad deploy: {exc}"


# The seed's dashboard panel (24 h increase, bottomk by method), and the same panel
# patterns over the bad deploy's per-order metric, as Grafana sends them: range queries
# over the last 15 minutes at a 2 s step (its resolution for a panel of ~450 points).
HEAVY_PANELS = {
    "seed: bottomk 24h increase by method": (
        'bottomk(1, sum by (method) (increase(shop_payments_total{status="success"}[24h])))'
    ),
    "bottomk 24h increase by order": (
        "bottomk(10, sum by (order_id) (increase(shop_checkout_order_duration_seconds_count[24h])))"
    ),
    "p95 by order (histogram_quantile)": (
        "histogram_quantile(0.95, sum by (le, order_id) "
        "(rate(shop_checkout_order_duration_seconds_bucket[5m])))"
    ),
}
PANEL_RANGE_S = 900.0
PANEL_STEP_S = 2.0


class _Dashboard(threading.Thread):
    """A dashboard left open during the incident: every ``every_s`` seconds its heavy panels
    are evaluated by the real Prometheus; each row records the query's time and what it
    did to Prometheus' private resident memory."""

    def __init__(
        self,
        stack: EmbeddedStack,
        every_s: float,
        t0: float,
        rows: list[dict[str, float | str | bool]],
        stop: threading.Event,
    ) -> None:
        super().__init__(name="oom-dashboard", daemon=True)
        self.stack, self.every_s, self.t0, self.rows, self.stop_event = (
            stack,
            every_s,
            t0,
            rows,
            stop,
        )
        self.prom = PrometheusClient(stack.urls["prometheus"], timeout_s=20.0)

    def run(self) -> None:
        # a daemon: on Ctrl-C the stack stops under it and it dies with the process
        while not self.stop_event.is_set():
            for panel, expr in HEAVY_PANELS.items():
                if self.stop_event.is_set():
                    return
                self._one(panel, expr)
            self.stop_event.wait(self.every_s)

    def _one(self, panel: str, expr: str) -> None:
        before = _rss_of(self.stack, ("prometheus",))["prometheus"]
        start = time.monotonic()
        now = time.time()
        ok, series = True, 0
        try:
            series = len(self.prom.query_range(expr, now - PANEL_RANGE_S, now, PANEL_STEP_S))
        except (PaychaosError, OSError):
            ok = False
        self.rows.append(
            {
                "t": round(start - self.t0, 2),
                "panel": panel,
                "seconds": round(time.monotonic() - start, 3),
                "ok": ok,
                "result_series": series,
                "prometheus_rss_before": before,
                "prometheus_rss_after": _rss_of(self.stack, ("prometheus",))["prometheus"],
            }
        )


def _poll_alerts(prom: PrometheusClient, seen: dict[str, float], t: float) -> None:
    with contextlib.suppress(PaychaosError, OSError):  # Prometheus down: nothing to read
        for alert in prom.alerts():
            if alert.firing and alert.name not in seen:
                seen[alert.name] = t


def run_layout(
    layout: Layout,
    settings: RunSettings,
    *,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> LayoutResult:
    """Run ``layout`` once; always stops the stack and removes the cgroup."""
    say = progress or (lambda _line: None)
    stop = stop or threading.Event()
    everything = ("collector", "postgres", "gateway", "api", "alertmanager", "prometheus")
    result = LayoutResult(
        key=layout.key,
        title=layout.title,
        instance=layout.instance.describe(),
        full_limit_bytes=layout.instance.memory_bytes,
        scale=settings.scale,
        real_on_instance=layout.real_on_instance,
        modelled=layout.modelled,
        off_instance=tuple(n for n in everything if n not in layout.real_on_instance),
        series_target=settings.series_target,
        series_target_from=settings.series_target_from,
    )
    state = settings.state_dir / layout.key.replace("@", "-")
    cfg = StackConfig(
        state_dir=state,
        ports=StackPorts.auto(),
        scrape_interval_s=settings.scrape_interval_s,
        with_proxy=False,
    )
    cg = MemoryCgroup.create(
        f"oom-{layout.option.lower()}-{layout.instance.name}",
        layout.instance.memory_bytes,
        cpu_quota_cores=layout.instance.vcpu,
    )
    result.cgroup, result.cgroup_version = cg.dirname, cg.info.version
    result.cpu_quota_applied = cg.cpu_quota_applied
    inside = set(layout.on_instance)
    kmsg = KernelOomLog(cg.dirname)
    result.kernel_log = kmsg.reason
    stack = EmbeddedStack(
        cfg,
        instance=cg,
        extra_specs=footprint_specs(layout, cfg, settings),
        child_setup=lambda name: cg.enter if name in inside else None,
    )
    try:
        say(f"[{layout.key}] starting the stack in {cg.path} ...")
        stack.start()
        time.sleep(SETTLE_S)
        result.real_ref_bytes = sum(_rss_of(stack, layout.real_on_instance).values())
        full = layout.instance.memory_bytes
        result.limit_bytes = int(
            result.real_ref_bytes + settings.scale * max(0, full - result.real_ref_bytes)
        )
        cg.set_limit(result.limit_bytes)
        wall0 = time.time()
        _drive(stack, cg, layout, settings, result, say, stop, kmsg)
        if layout.option == "C" and not stop.is_set():
            _budget(stack, time.time() - wall0, result, say)
    except KeyboardInterrupt:
        result.interrupted = True
        raise
    except (CgroupError, OSError) as exc:
        result.error = str(exc)
    finally:
        stop.set()
        for name, comp in stack.supervisor.components.items():
            result.restarts[name] = comp.restarts
        _read_footprints(state, layout, result)
        kmsg.close()
        try:
            stack.stop()
        finally:
            cg.remove()
    return analyse(result)


def _drive(
    stack: EmbeddedStack,
    cg: MemoryCgroup,
    layout: Layout,
    settings: RunSettings,
    result: LayoutResult,
    say: Progress,
    stop: threading.Event,
    kmsg: KernelOomLog | None = None,
) -> None:
    prom = PrometheusClient(stack.urls["prometheus"], timeout_s=0.5)
    pids: dict[int, str] = {}
    t0 = time.monotonic()
    wall0 = time.time()
    sale_over = threading.Event()  # ends the load between slices (as `stop` does)
    load = _Load(stack.urls["api"], settings.plan, t0, stop, sale_over)
    load.start()
    end_at: float | None = None  # --until-kill: the kill or the series target was reached
    end_after_load: float | None = None
    next_alert_poll = 0.0
    next_say = 0.0
    deploy_at = settings.bad_deploy_at_s
    credits = _CreditState.start(cg, layout) if settings.credits else None
    dashboard: _Dashboard | None = None
    dashboard_done = threading.Event()
    while True:
        t = time.monotonic() - t0
        result.samples.append(_sample(stack, cg, layout, t))
        if kmsg is not None:
            _kernel_kills(stack, kmsg, pids, result, t, t0)
            pids = _pid_map(stack)
        if deploy_at is not None and t >= deploy_at:
            deploy_at = None
            ttl = settings.plan.duration_s + settings.plan.tail_s - t + 30.0
            problem = deploy_order_label(stack.urls["api"], stack.cfg.state_dir, ttl)
            if problem:
                result.error = problem
                break
            result.bad_deploy_t = t
            say(f"[{layout.key}] {t:5.1f}s  bad deploy: checkouts now labelled by order id")
            if settings.dashboard_every_s is not None:
                dashboard = _Dashboard(
                    stack, settings.dashboard_every_s, t0, result.heavy_queries, dashboard_done
                )
                dashboard.start()
        if credits is not None:
            _credit_step(cg, credits, result, t, credit_schedule(settings.plan), say)
        if t >= next_alert_poll:
            if "prometheus" in layout.real_on_instance or settings.bad_deploy_at_s is not None:
                series = head_series(stack.urls["prometheus"])
                if series is not None:
                    result.head_series.append((round(t, 2), series))
            _poll_alerts(prom, result.alerts_seen, t)
            next_alert_poll = t + ALERT_POLL_S
        if t >= next_say:
            last = result.samples[-1]
            failed = sum(s.failed for s in load.slices)
            sent = sum(s.sent for s in load.slices)
            say(
                f"[{layout.key}] {t:5.1f}s  memory {last.usage_bytes / 2**20:6.0f}/"
                f"{last.limit_bytes / 2**20:.0f} MiB ({last.usage_bytes / last.limit_bytes:4.0%})"
                f"  OOM kills {last.oom_kills}  checkouts {sent} ({failed} failed)"
                + (f"  head series {result.head_series[-1][1]:,}" if result.head_series else "")
            )
            next_say = t + 2.0
        if end_at is None:
            end_at = _until_kill_end(settings, result, t)
        if not load.is_alive() and end_after_load is None:
            end_after_load = t + settings.plan.tail_s
        if (
            stop.is_set()
            or (end_after_load is not None and t >= end_after_load)
            or (end_at is not None and t >= end_at)
        ):
            break
        time.sleep(SAMPLE_INTERVAL_S)
    sale_over.set()
    dashboard_done.set()  # the run is over: the dashboard closes too
    if dashboard is not None:
        dashboard.join(timeout=25)
    load.join(timeout=settings.plan.slice_s + 10)
    result.slices = list(load.slices)
    if load.error is not None:
        result.error = f"load driver failed: {load.error}"
    for name, comp in stack.supervisor.components.items():
        for when, code in comp.exits:
            result.exits.append((when - wall0, name, code))
    result.exits.sort()


def _pid_map(stack: EmbeddedStack) -> dict[int, str]:
    """Every live process of every component (its children too), by pid."""
    out: dict[int, str] = {}
    for name, comp in stack.supervisor.components.items():
        if comp.alive and comp.pid:
            out.update((pid, name) for pid in process_tree([comp.pid]))
    return out


def _kernel_kills(
    stack: EmbeddedStack,
    kmsg: KernelOomLog,
    pids: dict[int, str],
    result: LayoutResult,
    t: float,
    t0: float,
) -> None:
    """The kernel's oom-kill records since the last sample, each named by its pid (from the
    map of the previous sample: the victim is dead by now)."""
    for kill in kmsg.poll():
        name = pids.get(kill.pid) or next(
            (n for n, c in stack.supervisor.components.items() if c.pid == kill.pid), None
        )
        prev_t = result.samples[-2].t if len(result.samples) > 1 else 0.0
        when = min(t, max(prev_t - 1.0, kill.ts_s - t0))  # its clock is the boot clock
        result.kernel_kills.append((round(when, 2), kill.task, kill.pid, name))
    if not kmsg.available and not result.kernel_log:
        result.kernel_log = kmsg.reason


def _until_kill_end(settings: RunSettings, result: LayoutResult, t: float) -> float | None:
    """With ``until_kill``: when to end this layout's sale, once its first kernel OOM kill
    was counted or its Prometheus reached the series target (None: not yet)."""
    if not settings.until_kill or result.bad_deploy_t is None:
        return None
    if result.samples and result.samples[-1].oom_kills > 0:
        result.ended_by = f"first kernel OOM kill (counted at {t:.1f}s), then {AFTER_KILL_S:g}s"
        return t + AFTER_KILL_S
    target = settings.series_target
    if target is not None and result.head_series and result.head_series[-1][1] >= target:
        n = result.head_series[-1][1]
        result.ended_by = (
            f"head series {n:,} at {t:.1f}s >= {target:,} (the peak of "
            f"{settings.series_target_from or 'the killed layout'}), then {AFTER_KILL_S:g}s"
        )
        return t + AFTER_KILL_S
    return None


@dataclass
class _CreditState:
    balance: CreditBalance
    last_t: float
    last_cpu_s: float
    quota: float
    phase: str = ""

    @classmethod
    def start(cls, cg: MemoryCgroup, layout: Layout) -> _CreditState:
        spec = T3_CREDITS.get(layout.instance.name)
        if spec is None:
            known = ", ".join(T3_CREDITS)
            raise CgroupError(f"no published credit figures for {layout.instance.name} ({known})")
        if not cg.cpu_quota_applied:
            raise CgroupError(f"{cg.path}: no CPU controller, the credit quota cannot apply")
        # the balance spent (hours above the baseline), then full, full, spent (ABBA): what
        # grows during a run (series, tables, caches) weighs on both phases alike
        balance = CreditBalance(spec, 0.0)
        cg.set_cpu_quota(balance.quota_cores())
        return cls(balance, 0.0, cg.cpu_seconds(), balance.quota_cores())


SPENT, FULL = "credits spent", "with credits"
CREDIT_ORDER = (SPENT, FULL, FULL, SPENT)  # ABBA: a linear drift weighs on both alike


def credit_schedule(plan: TrafficPlan) -> list[tuple[float, str]]:
    """(start, phase) of each stage of the credits plan, in :data:`CREDIT_ORDER`."""
    out, start = [], 0.0
    for stage, phase in zip(plan.stages, CREDIT_ORDER, strict=False):
        out.append((start, phase))
        start += stage.duration_s
    return out


def _credit_step(
    cg: MemoryCgroup,
    state: _CreditState,
    result: LayoutResult,
    t: float,
    schedule: list[tuple[float, str]],
    say: Progress,
) -> None:
    """Earn and spend from the group's CPU use; at each phase of ``schedule`` the balance is
    set: empty (credits spent) or full (the same instance after a day's rest: 24 h of
    earning); apply the quota the balance allows."""
    phase = next((p for start, p in reversed(schedule) if t >= start), SPENT)
    if phase != state.phase:
        state.phase = phase
        state.balance.balance = state.balance.spec.max_balance if phase == FULL else 0.0
        result.credit_switches.append((round(t, 2), phase))
        allowed = "up to every vCPU" if phase == FULL else "at the baseline"
        say(f"[{result.key}] {t:5.1f}s  {phase}: CPU quota {allowed}")
    cpu_s = cg.cpu_seconds()
    state.balance.step(t - state.last_t, cpu_s - state.last_cpu_s)
    state.last_t, state.last_cpu_s = t, cpu_s
    quota = state.balance.quota_cores()
    if quota != state.quota:
        cg.set_cpu_quota(quota)
        state.quota = quota
    throttling = cg.cpu_throttling()
    result.credit_trace.append(
        (
            round(t, 2),
            round(state.balance.balance, 3),
            quota,
            throttling.periods if throttling else 0,
            throttling.throttled_periods if throttling else 0,
        )
    )


def _budget(stack: EmbeddedStack, window_s: float, result: LayoutResult, say: Progress) -> None:
    """``paychaos budget`` over the run: in layout C, Prometheus and the collector stand
    for Grafana Cloud, so what they received is what the store would send it."""
    say(f"[{result.key}] measuring the free-tier budget over the last {window_s:.0f}s ...")
    try:
        report = run_budget(
            sources_of(stack.target()),
            tier=load_limits(),
            window_s=window_s,
            settle_s=0.0,  # the run's quiet tail let the last scrape and batches arrive
            explosion=parse_explosion(DEFAULT_EXPLOSION),
        )
    except PaychaosError as exc:
        result.budget_summary = f"free-tier fit: not measured ({exc})"
        return
    result.budget = to_json(report)
    result.budget_text = render_text(report)
    result.budget_summary = summary_line(report)


def _read_footprints(state: Path, layout: Layout, result: LayoutResult) -> None:
    for component in layout.modelled:
        with contextlib.suppress(OSError, ValueError):
            status = json.loads((state / f"footprint-{component}.json").read_text())
            result.footprint_status[component] = {
                k: float(v) for k, v in status.items() if isinstance(v, int | float)
            }


def run_all(
    layouts: list[Layout], settings: RunSettings, *, progress: Progress | None = None
) -> list[LayoutResult]:
    """Every layout, one after the other (the cores are shared)."""
    removed = cleanup_stale()
    if removed and progress:
        progress(f"removed leftover cgroups of dead runs: {', '.join(removed)}")
    results: list[LayoutResult] = []
    for layout in layouts:
        result = run_layout(layout, settings, progress=progress)
        results.append(result)
        if settings.until_kill and settings.series_target is None and result.oom_kills:
            # the layouts after it must carry at least the series that killed this one
            settings = replace(
                settings,
                series_target=result.peak_head_series,
                series_target_from=result.key,
            )
    return results


def stderr_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
