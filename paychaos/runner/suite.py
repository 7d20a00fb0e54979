"""Run several scenarios on one shared stack, with a settle period between them.

Before each scenario (but the first), the suite waits at least the
scenario's ``settle_s`` and then until the alerts its steady state forbids
have cleared (bounded by ``MAX_SETTLE_S``): alerts from the previous
scenario's faults need their rule windows (1m) to clear, or the next
steady-state check would fail.

Example::

    records = run_suite(load_all([Path("scenarios")]), session)

A scenario the target cannot run (it lacks a capability the scenario needs) is
not run: its record is *skipped*, with the missing capabilities as the reason,
in every report format.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from paychaos.checks.metric import probe_no_alerts
from paychaos.contracts.errors import Unsupported
from paychaos.contracts.metrics import MetricsSource
from paychaos.contracts.scenario import NoAlertsProbe
from paychaos.report.model import RunRecord, RunStatus
from paychaos.runner.context import metrics_for
from paychaos.runner.runner import RunOptions, run_scenario
from paychaos.scenario.load import LoadedScenario
from paychaos.targets.resolve import TargetSession

MAX_SETTLE_S = 120.0


def settle(
    metrics: MetricsSource,
    min_s: float,
    probes: Sequence[NoAlertsProbe] = (),
    *,
    max_s: float = MAX_SETTLE_S,
    should_stop: Callable[[], bool] = lambda: False,
    say: Callable[[str], None] = lambda _t: None,
) -> float:
    """Wait ``min_s``, then until the alert probes hold (at most ``max_s``); the time waited."""
    started = time.monotonic()
    if probes:
        say(f"settling (at least {min_s:g}s, until the next steady state's alerts clear)")
    while time.monotonic() - started < max_s and not should_stop():
        if time.monotonic() - started >= min_s and all(
            probe_no_alerts(metrics, probe)[0] for probe in probes
        ):
            break
        time.sleep(1.0)
    return time.monotonic() - started


def run_suite(
    scenarios: Sequence[LoadedScenario],
    session: TargetSession,
    opts: RunOptions | None = None,
    *,
    on_record: Callable[[RunRecord], None] = lambda _r: None,
    first_settle_s: float = 0.0,
) -> list[RunRecord]:
    """Run ``scenarios`` in order on ``session``'s target; stop early only when interrupted."""
    opts = opts or RunOptions()
    metrics = opts.metrics or metrics_for(session.target)
    records: list[RunRecord] = []
    for index, loaded in enumerate(scenarios):
        if opts.stop.is_set():
            break
        min_s = loaded.scenario.settle_s if index else first_settle_s
        probes = [
            p
            for p in loaded.scenario.steady_state.probes
            if isinstance(p, NoAlertsProbe) and p.when in ("both", "before")
        ]
        settle(
            metrics,
            min_s,
            probes if loaded.scenario.steady_state.before else (),
            should_stop=opts.stop.is_set,
            say=(opts.progress.message if opts.progress is not None else (lambda _t: None)),
        )
        try:
            record = run_scenario(loaded, session, opts)
        except Unsupported as exc:
            record = skipped_record(loaded, str(exc))
        records.append(record)
        on_record(record)
        if record.status == "interrupted":
            break
    return records


def skipped_record(loaded: LoadedScenario, reason: str, status: RunStatus = "skipped") -> RunRecord:
    """The record of a scenario not run: *skipped* because the target cannot run it, or
    another ``status`` (an *error*: its lane ended before running it)."""
    sc = loaded.scenario
    now = time.time()
    record = RunRecord(
        sc.name,
        sc.description,
        loaded.source,
        status=status,
        failure_mode=sc.failure_mode,
        reason=reason,
    )
    record.started_unix_s = record.ended_unix_s = now
    return record
