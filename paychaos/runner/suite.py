"""Run several scenarios on one shared stack, with a settle period between them.

Before each scenario (but the first), the suite waits at least the
scenario's ``settle_s`` and then until the alerts its steady state forbids
have cleared (bounded by ``MAX_SETTLE_S``): alerts from the previous
scenario's faults need their rule windows (1m) to clear, or the next
steady-state check would fail.

Example::

    records = run_suite(load_all([Path("scenarios")]), handle)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from paychaos.checks.metric import probe_no_alerts
from paychaos.report.model import RunRecord
from paychaos.runner.runner import RunOptions, run_scenario
from paychaos.runner.stackctl import StackHandle
from paychaos.scenario.load import LoadedScenario
from paychaos.scenario.model import NoAlertsProbe
from paychaos.stack.monitoring.promapi import MetricsSource, PrometheusClient

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
    handle: StackHandle,
    opts: RunOptions | None = None,
    *,
    on_record: Callable[[RunRecord], None] = lambda _r: None,
    first_settle_s: float = 0.0,
) -> list[RunRecord]:
    """Run ``scenarios`` in order on ``handle``; stop early only when interrupted."""
    opts = opts or RunOptions()
    metrics = opts.metrics or PrometheusClient(handle.urls["prometheus"], timeout_s=2.0)
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
        record = run_scenario(loaded, handle, opts)
        records.append(record)
        on_record(record)
        if record.status == "interrupted":
            break
    return records
