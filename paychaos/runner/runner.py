"""Run a validated scenario against a stack: traffic, timeline, checks, always revert.

The order (Chaos Toolkit's, adapted to continuous traffic)::

    start traffic → steady state *before* (just before the first fault; if it
    does not hold: aborted, nothing injected) → timeline: inject / revert
    faults, poll expectations every second → after the last revert: recovery
    (steady state *after* within ``recovery.within_s``) → stop traffic →
    final checks (ledger, hygiene) → verdict.

Every injected fault is reverted in a ``finally`` (``rollback: always``),
including on SIGINT/SIGTERM (the CLI turns them into ``stop``), which marks
the run *interrupted*. Each fault also carries a TTL as the last line of
defence. A scenario's *guards* (stop conditions) are evaluated at every poll;
when one trips, every fault is reverted at once and the run is *aborted* by
that guard.

Before anything starts, the target must offer every capability the scenario
needs (:mod:`paychaos.runner.needs`): otherwise :class:`Unsupported` (exit 2).

Example::

    record = run_scenario(loaded, session)     # a TargetSession (paychaos.targets)
    record.status     # "passed"
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from paychaos.checks.build import build_check
from paychaos.checks.ledger import gateway_duplicates
from paychaos.checks.metric import probe_metric, probe_no_alerts
from paychaos.contracts.errors import FaultInjectionFailed, InvalidFault, RollbackFailed, StackError
from paychaos.contracts.expectations import Check, CheckContext, Window
from paychaos.contracts.faults import Fault, FaultCatalog, FaultEnv
from paychaos.contracts.metrics import MetricsSource
from paychaos.contracts.scenario import (
    AlertExpectation,
    CulpritExpectation,
    MetricProbe,
    Scenario,
)
from paychaos.report.model import ExpectationRecord, FaultRecord, ProbeRecord, RunRecord
from paychaos.runner.actors import run_catalog
from paychaos.runner.context import default_traffic, make_context, metrics_for, rule_for_s
from paychaos.runner.floors import (
    RESTARTING_FAULTS,
    alert_fired_floor_s,
    blind_delay_s,
    culprit_floor_s,
    detection_floor_s,
    prometheus_back_at,
    recovery_floor_s,
)
from paychaos.runner.guards import GuardWatch
from paychaos.runner.needs import check_supported
from paychaos.runner.observe import CachedMetrics, collect_series, track_alerts
from paychaos.runner.progress import Progress, ProgressState
from paychaos.runner.traffic import TrafficDriver
from paychaos.scenario.load import LoadedScenario
from paychaos.targets.resolve import TargetSession

POLL_S = 1.0
TICK_S = 0.25
#: Extra time after the last deadline before the run gives up waiting.
GRACE_S = 5.0


class Interrupted(Exception):
    """The run was asked to stop (SIGINT/SIGTERM)."""


@dataclass
class RunOptions:
    """Knobs of one run (defaults are what ``paychaos run`` uses)."""

    stop: threading.Event = field(default_factory=threading.Event)
    progress: Progress | None = None
    catalog: FaultCatalog | None = None
    traffic: Callable[[TargetSession, Scenario, Path], TrafficDriver] | None = None
    metrics: MetricsSource | None = None
    collector: object | None = None
    clock: Callable[[], float] = time.time


class _Run:
    """The state of one run (one scenario against one stack)."""

    def __init__(self, loaded: LoadedScenario, session: TargetSession, opts: RunOptions) -> None:
        self.sc = loaded.scenario
        self.loaded, self.session, self.opts = loaded, session, opts
        self.target = target = session.target
        self.catalog = opts.catalog or run_catalog()
        self.record = RunRecord(
            self.sc.name, self.sc.description, loaded.source, failure_mode=self.sc.failure_mode
        )
        self.record.recovery_within_s = self.sc.recovery.within_s
        self.record.stack = {
            "target": target.name,
            "kind": target.kind,
            "scrape_interval_s": target.timing.scrape_interval_s,
            "evaluation_interval_s": target.timing.evaluation_interval_s,
            "group_wait_s": target.timing.group_wait_s,
            "tracing": target.tracing,
            "urls": target.urls(),
        }
        self.faults: list[Fault] = []
        self.env = FaultEnv(
            target=target, state_dir=session.state_dir, allow_hosts=session.allow_hosts
        )
        self.injected: list[bool] = [False] * len(self.sc.faults)
        self.reverted: list[bool] = [False] * len(self.sc.faults)
        self.checks: list[Check] = [build_check(e) for e in self.sc.expectations]

    # -- helpers ---------------------------------------------------------------

    def _say(self, text: str) -> None:
        if self.opts.progress is not None:
            self.opts.progress.message(f"[{self.sc.name}] {text}")

    def _check_stop(self) -> None:
        if self.opts.stop.is_set():
            raise Interrupted("interrupted")

    def _anchor_unix_s(self, exp_index: int) -> float | None:
        exp = self.sc.expectations[exp_index]
        ids = [self.sc.step_id(i) for i in range(len(self.sc.faults))]
        if not ids:
            return self.record.traffic_started_unix_s
        step = ids.index(exp.after) if exp.after else 0
        return self.record.faults[step].injected_unix_s

    def _blind_windows(self) -> list[tuple[float, float]]:
        """When a fault blinded Prometheus itself (an active one: until forever)."""
        return [
            (f.injected_unix_s, f.reverted_unix_s or float("inf"))
            for f in self.record.faults
            if f.target == "process/prometheus" and f.injected_unix_s is not None
        ]

    def _evidence_from(self, anchor_unix_s: float) -> float:
        """When Prometheus surely holds a sample scraped after ``anchor``: one whole scrape
        interval after it (or after the end of a blinding fault active at it)."""
        blind = blind_delay_s(anchor_unix_s, self._blind_windows())
        return anchor_unix_s + blind + self.target.timing.scrape_interval_s

    def _probes(self, ctx: CheckContext, phase: str) -> tuple[bool, list[ProbeRecord]]:
        out: list[ProbeRecord] = []
        for probe in self.sc.steady_state.probes:
            if probe.when not in ("both", phase):
                continue
            if isinstance(probe, MetricProbe):
                ok, detail = probe_metric(ctx.metrics, probe)
            else:
                ok, detail = probe_no_alerts(ctx.metrics, probe)
            name = probe.name or (probe.query if isinstance(probe, MetricProbe) else "no alerts")
            out.append(ProbeRecord("before" if phase == "before" else "after", name, ok, detail))
        return all(p.ok for p in out), out

    # -- the run ---------------------------------------------------------------

    def prepare(self) -> None:
        check_supported(self.loaded, self.target, self.catalog)  # Unsupported: nothing touched
        env = self.env
        for index, step in enumerate(self.sc.faults):
            params = self.loaded.params[index]
            fault = self.catalog.build(params, env)
            self.faults.append(fault)
            self.record.faults.append(
                FaultRecord(
                    id=self.sc.step_id(index),
                    fault=step.fault,
                    target=fault.target,
                    params=params.param_dict(),
                    at_s=step.at_s,
                    duration_s=step.duration_s,
                )
            )
        rule_for = rule_for_s(self.opts.metrics or metrics_for(self.target))
        timing = self.target.timing
        for index, exp in enumerate(self.sc.expectations):
            check = self.checks[index]
            floor_s = detection_floor_s(
                exp,
                scrape_interval_s=timing.scrape_interval_s,
                group_wait_s=timing.group_wait_s,
                rule_for_s=rule_for,
            )
            if isinstance(exp, CulpritExpectation):
                floor_s = culprit_floor_s(exp, self._step_param(exp.after, "rate_per_s"))
            self.record.expectations.append(
                ExpectationRecord(
                    name=self.sc.expectation_name(index),
                    type=exp.type,
                    description=check.description,
                    mode=check.mode,
                    after=exp.after or (self.sc.step_id(0) if self.sc.faults else None),
                    within_s=exp.within_s,
                    floor_s=floor_s,
                    signal=(
                        {"traces": "trace", "logs": "log"}[exp.signal]
                        if isinstance(exp, CulpritExpectation)
                        else ""
                    ),
                    notification=(
                        isinstance(exp, AlertExpectation) and exp.notification and not exp.absent
                    ),
                    fired_floor_s=(
                        alert_fired_floor_s(exp, rule_for_s=rule_for)
                        if isinstance(exp, AlertExpectation) and not exp.absent
                        else None
                    ),
                )
            )

    def _step_param(self, step: str | None, name: str) -> float | None:
        """A numeric parameter of fault step ``step`` (default: the first), if it has one."""
        ids = [self.sc.step_id(i) for i in range(len(self.sc.faults))]
        if not ids or (step is not None and step not in ids):
            return None
        value = self.loaded.params[ids.index(step) if step else 0].param_dict().get(name)
        return float(value) if isinstance(value, int | float) else None

    def revert_all(self) -> list[str]:
        errors = []
        for index, fault in enumerate(self.faults):
            if self.injected[index] and not self.reverted[index]:
                try:
                    fault.revert()
                except (RollbackFailed, FaultInjectionFailed, InvalidFault, OSError) as exc:
                    errors.append(f"{self.record.faults[index].id}: {exc}")
                    continue
                self.reverted[index] = True
                self.record.faults[index].reverted_unix_s = self.opts.clock()
                self._say(f"reverted {self.record.faults[index].id}")
        return errors + self.catalog.close(self.env)

    def poll_checks(self, ctx: CheckContext, now: float, final_pass: bool) -> None:
        for index, check in enumerate(self.checks):
            rec = self.record.expectations[index]
            if rec.status != "pending" or check.mode == "final":
                continue
            anchor = self._anchor_unix_s(index)
            if anchor is None:
                continue  # its fault is not injected yet
            deadline = anchor + rec.within_s
            if rec.type == "metric" and now < self._evidence_from(anchor):
                continue  # Prometheus may hold only samples older than the fault yet
            window = Window(
                since_unix_s=anchor
                if check.mode == "eventually"
                else self.record.traffic_started_unix_s
            )
            obs = check.observe(ctx, window)
            rec.detail = obs.detail
            fired_at = obs.stages.get("fired")
            if fired_at is not None and rec.fired_s is None:
                rec.fired_s = max(0.0, fired_at - anchor)
                active_at = obs.stages.get("active")
                rec.active_s = None if active_at is None else active_at - anchor
            if check.mode == "eventually":
                if obs.seen:
                    rec.status, rec.observed_unix_s = "passed", obs.at_unix_s or now
                    rec.detected_s = max(0.0, rec.observed_unix_s - anchor)
                    self._say(f"met: {rec.name} after {rec.detected_s:.1f}s ({obs.detail})")
                elif now > deadline:
                    rec.status = "failed"
                    self._say(f"FAILED: {rec.name}: not within {rec.within_s:g}s ({obs.detail})")
            elif obs.seen:  # never
                rec.status, rec.observed_unix_s = "failed", now
                rec.detected_s = now - anchor
                self._say(f"FAILED: {rec.name}: {obs.detail}")
            elif final_pass:
                rec.status = "passed"

    def abort_by_guard(self, tripped: tuple[str, str], at_unix_s: float) -> None:
        """A guard tripped: revert every fault now; the run is aborted by it."""
        name, detail = tripped
        rec = self.record
        self._say(f"GUARD {name} tripped: {detail}; reverting every fault")
        errors = self.revert_all()
        done = self.opts.clock()
        rec.status = "aborted"
        since = at_unix_s - (rec.traffic_started_unix_s or at_unix_s)
        rec.guard = {
            "name": name,
            "detail": detail,
            "tripped_unix_s": at_unix_s,
            "tripped_s": since,
            "reverted_within_s": done - at_unix_s,
        }
        rec.reason = (
            f"aborted by guard {name} at {since:.1f}s into the traffic ({detail}); "
            f"every fault reverted within {done - at_unix_s:.2f}s"
        )
        if errors:
            rec.reason += "; rollback problems: " + "; ".join(errors)

    def _facts(self, ctx: CheckContext, index: int) -> None:
        """Record what the fault's injection chose (e.g. a card tester's customer)."""
        facts = getattr(self.faults[index], "facts", None)
        if facts:
            self.record.faults[index].facts = {k: str(v) for k, v in facts.items()}
            ctx.injected[self.sc.step_id(index)] = dict(self.record.faults[index].facts)

    def pending_eventually(self) -> bool:
        return any(
            r.status == "pending" and r.mode == "eventually" for r in self.record.expectations
        )

    def execute(self, driver: TrafficDriver, ctx: CheckContext) -> None:
        sc, rec, clock = self.sc, self.record, self.opts.clock
        if ctx.gateway_url:  # a target with the gateway's ledger (gateway.ledger)
            ctx.baseline["gateway_duplicate_charges"] = float(gateway_duplicates(ctx.gateway_url))
        driver.start(sc.traffic)
        rec.traffic_started_unix_s = t0 = clock()
        last_poll = 0.0
        last_revert_at: float | None = None
        recovered = not sc.faults or not sc.steady_state.after or not sc.steady_state.probes
        max_deadline = max(
            [f.at_s + e.within_s for f in sc.faults for e in sc.expectations] + [0.0]
        )
        hard_end = t0 + max(sc.traffic.duration_s, max_deadline) + sc.recovery.within_s + GRACE_S
        guards = GuardWatch(sc, ctx.metrics, driver)
        while True:
            self._check_stop()
            now = clock()
            elapsed = now - t0
            for index, step in enumerate(sc.faults):
                if not self.injected[index] and elapsed >= step.at_s:
                    if index == 0 and sc.steady_state.before and sc.steady_state.probes:
                        ok, probes = self._probes(ctx, "before")
                        rec.probes.extend(probes)
                        if not ok:
                            rec.status = "aborted"
                            rec.reason = (
                                "steady state did not hold before the first fault: "
                                + "; ".join(p.detail for p in probes if not p.ok)
                            )
                            return
                    self.faults[index].inject()  # FaultInjectionFailed propagates: error
                    self.injected[index] = True
                    rec.faults[index].injected_unix_s = clock()
                    self._facts(ctx, index)
                    self._say(
                        f"injected {rec.faults[index].id} ({step.fault} on {self.faults[index].target})"
                    )
                if (
                    self.injected[index]
                    and not self.reverted[index]
                    and elapsed >= step.at_s + step.duration_s
                ):
                    self.faults[index].revert()
                    self.reverted[index] = True
                    rec.faults[index].reverted_unix_s = last_revert_at = clock()
                    self._facts(ctx, index)
                    self._say(f"reverted {rec.faults[index].id}")
            if now - last_poll >= POLL_S:
                last_poll = now
                if isinstance(ctx.metrics, CachedMetrics):
                    ctx.metrics.clear()
                track_alerts(ctx.metrics, rec.alert_events, now)
                tripped = guards.tripped()
                if tripped is not None:
                    self.abort_by_guard(tripped, now)
                    return
                self.poll_checks(ctx, now, final_pass=False)
                stats = driver.stats()
                rec.client_timeline.append((now, stats.rate_per_s, stats.error_ratio))
                all_reverted = all(self.reverted) and all(self.injected)
                if (
                    not recovered
                    and all_reverted
                    and last_revert_at is not None
                    and now >= self._evidence_from(last_revert_at)
                ):
                    ok, probes = self._probes(ctx, "after")
                    if ok:
                        recovered = True
                        rec.recovered_s = max(0.0, now - last_revert_at)
                        rec.probes.extend(probes)
                        self._say(f"recovered {rec.recovered_s:.1f}s after the last revert")
                    elif now - last_revert_at > sc.recovery.within_s:
                        recovered = True  # judged: failed
                        rec.probes.extend(probes)
                        self._say("FAILED: steady state not back within the recovery deadline")
                if self.opts.progress is not None:
                    active = tuple(
                        rec.faults[i].id
                        for i in range(len(sc.faults))
                        if self.injected[i] and not self.reverted[i]
                    )
                    phase = (
                        "fault"
                        if active
                        else "recovery"
                        if not recovered and all(self.reverted) and sc.faults
                        else "warmup"
                        if not any(self.injected) and sc.faults
                        else "steady"
                    )
                    met = sum(1 for e in rec.expectations if e.status == "passed")
                    self.opts.progress.update(
                        ProgressState(
                            phase,
                            elapsed,
                            stats.rate_per_s,
                            stats.error_ratio,
                            active,
                            met,
                            len(rec.expectations),
                            sc.name,
                        )
                    )
                done = (
                    elapsed >= sc.traffic.duration_s
                    and all(self.reverted)
                    and recovered
                    and not self.pending_eventually()
                )
                if done or now > hard_end:
                    break
            time.sleep(TICK_S)
        if isinstance(ctx.metrics, CachedMetrics):
            ctx.metrics.clear()
        self.poll_checks(ctx, clock(), final_pass=True)
        for exp in rec.expectations:
            if exp.status == "pending" and exp.mode == "eventually":
                exp.status = "failed"

    def final_checks(self, ctx: CheckContext) -> None:
        for index, check in enumerate(self.checks):
            rec = self.record.expectations[index]
            if check.mode != "final":
                continue
            self._say(f"checking {rec.name} ...")
            obs = check.observe(ctx, Window(since_unix_s=self.record.traffic_started_unix_s))
            rec.status = "passed" if obs.seen else "failed"
            rec.detail = obs.detail
            rec.observed_unix_s = obs.at_unix_s
            self._say(("met: " if obs.seen else "FAILED: ") + f"{rec.name}: {obs.detail}")
        for index, check in enumerate(self.checks):
            tally = getattr(check, "tally", None)
            anchor = self._anchor_unix_s(index)
            if tally is not None and anchor is not None:  # e.g. the culprit's final count
                rec = self.record.expectations[index]
                window = Window(since_unix_s=anchor, until_unix_s=self.opts.clock())
                rec.detail += f"; by the end of the run: {tally(ctx, window)}"

    def adjust_floors(self, metrics: MetricsSource | None = None) -> None:
        """Floors that depend on what happened: a fault that blinded Prometheus.

        Monitoring is blind while a fault holds Prometheus: a pause until it is reverted;
        a kill or restart until the new process scraped itself again (read from ``metrics``;
        the fault's window when that cannot be read)."""
        rec = self.record
        rec.recovery_floor_s = recovery_floor_s(self.target.timing.scrape_interval_s)
        blind = []
        for f in rec.faults:
            if f.target.rpartition("/")[2] != "prometheus" or f.injected_unix_s is None:
                continue
            end = f.reverted_unix_s or rec.ended_unix_s
            if f.fault in RESTARTING_FAULTS and metrics is not None:
                end = prometheus_back_at(metrics, f.injected_unix_s, end)
            blind.append((f.injected_unix_s, end))
        for index, exp in enumerate(rec.expectations):
            anchor = self._anchor_unix_s(index)
            if anchor is None or exp.type not in ("metric", "alert"):
                continue
            delay = blind_delay_s(anchor, blind)
            if exp.type == "metric" and exp.floor_s is not None:
                exp.floor_s += delay  # a scrape after Prometheus is back
            elif exp.fired_floor_s is not None and exp.floor_s is not None:
                # the rule's `for` runs on the wall clock through the pause
                fired = max(exp.fired_floor_s, delay)
                exp.floor_s += fired - exp.fired_floor_s
                exp.fired_floor_s = fired

    def verdict(self) -> None:
        rec = self.record
        if rec.status in ("aborted", "interrupted", "error"):
            for exp in rec.expectations:
                if exp.status == "pending":
                    exp.status = "not_run"
            return
        failed = [e.name for e in rec.expectations if e.status != "passed"]
        recovery_failed = (
            rec.recovered_s is None
            and bool(self.sc.faults)
            and bool(self.sc.steady_state.after and self.sc.steady_state.probes)
        )
        rec.status = "failed" if failed or recovery_failed else "passed"
        reasons = [f"expectation failed: {n}" for n in failed]
        if recovery_failed:
            reasons.append(f"steady state not back within {self.sc.recovery.within_s:g}s")
        rec.reason = "; ".join(reasons)


def run_scenario(
    loaded: LoadedScenario, session: TargetSession, opts: RunOptions | None = None
) -> RunRecord:
    """Run one scenario; never leaves a fault injected (``rollback: always``).

    Raises :class:`~paychaos.contracts.errors.Unsupported` (nothing touched) when the
    target lacks a capability the scenario needs.
    """
    opts = opts or RunOptions()
    run = _Run(loaded, session, opts)
    rec = run.record
    rec.started_unix_s = opts.clock()
    run.prepare()  # InvalidFault here: nothing touched yet
    ledger_dir = Path(tempfile.mkdtemp(prefix="paychaos-ledger-"))
    try:
        return _run(run, opts, session, ledger_dir)
    finally:
        shutil.rmtree(ledger_dir, ignore_errors=True)


def _run(run: _Run, opts: RunOptions, session: TargetSession, ledger_dir: Path) -> RunRecord:
    rec, loaded = run.record, run.loaded
    driver = (opts.traffic or default_traffic)(session, loaded.scenario, ledger_dir)
    rec.traffic_driver = type(driver).__name__
    rec.fault_driver = type(run.catalog).__name__
    ctx = make_context(
        session, driver, metrics=opts.metrics, collector=opts.collector, clock=opts.clock
    )
    run.env.traffic = driver  # for faults that are traffic (a card tester)
    try:
        try:
            run.execute(driver, ctx)
        finally:
            rollback_errors = run.revert_all() if loaded.scenario.rollback == "always" else []
            stats = driver.stop()
            rec.traffic = {
                "sent": stats.sent,
                "completed": stats.completed,
                "errors": stats.errors,
                "dropped": stats.dropped,
                **({"button_errors": stats.button_errors} if stats.button_errors else {}),
            }
        failure = getattr(driver, "failure", None)
        if rollback_errors:
            rec.status, rec.reason = "error", "rollback failed: " + "; ".join(rollback_errors)
        elif failure is not None:
            rec.status, rec.reason = "error", f"traffic failed: {type(failure).__name__}: {failure}"
        elif rec.status not in ("aborted",):
            run.final_checks(ctx)
            rec.status = "failed"  # provisional; verdict decides
    except Interrupted:
        rec.status, rec.reason = "interrupted", "interrupted by a signal; faults reverted"
    except (FaultInjectionFailed, InvalidFault, RollbackFailed, StackError) as exc:
        rec.status, rec.reason = "error", f"{type(exc).__name__}: {exc}"
    finally:
        if opts.progress is not None:
            opts.progress.close()
    run.verdict()
    run.adjust_floors(ctx.metrics if rec.status != "interrupted" else None)
    rec.ended_unix_s = opts.clock()
    if rec.status not in ("interrupted",):
        collect_series(ctx.metrics, rec, session.target.timing.scrape_interval_s)
    return rec
