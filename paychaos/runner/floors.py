"""The fastest detection the monitoring machinery allows (the *floor*), per expectation.

A floor is a lower bound: no reported time may be below it (a run checks,
:meth:`~paychaos.report.model.RunRecord.times_below_floor`). Waits of a random
phase (the next scrape, the next rule evaluation, the next OTLP batch or RUM
push: each 0..interval) can be zero, so they are not in a floor; fixed waits are.

- alert fired: the rule's ``for:`` (pending → firing). Prometheus's ``activeAt``
  says whether the alert became active after the fault; one active before it is
  no detection (the matrix's "before fault").
- alert notified: + Alertmanager's ``group_wait`` (a new group waits that long).
- metric: one scrape + ``for_s``. A PromQL answer carries no sample time, so the
  runner takes a metric condition as evidence only once a whole scrape interval
  has passed since the fault (every target scraped since): before that its
  value may come from samples all older than the fault (a threshold that
  already held would be "detected" in milliseconds).
- trace, log, RUM: 0 (the span, record or browser event carries its time; the
  batch or push timer may fire right after it); a culprit: the time its tester
  needs for ``min_count`` attempts (:func:`culprit_floor_s`).
- ledger, hygiene, must-not-fire: no floor.
- while a fault blinds Prometheus itself (a pause of its process or container;
  a kill or restart until its new process started, read from its own
  ``process_start_time_seconds``): a metric's floor adds the blind time; an
  alert's ``for`` runs on the wall clock during a pause, so its floor is the
  later of ``for`` and the end of the blind time (:func:`blind_delay_s`).

Recovery: one scrape after the last revert (:func:`recovery_floor_s`); the
runner judges the after-probes only from then, on samples of the reverted
system. A probe over a range window (``[15s]``) may hold again before the
fault's samples have left its window (a ratio falls below its threshold once
enough clean samples are in), so the window is no part of the floor.

A threshold over a rate window adds a warm-up the floor leaves out on purpose
(it depends on the fault's strength): enough bad samples must enter the
window, e.g. a p95 over a 1m window needs 5 % of the minute (3 s) to be slow.
The bench reports measured time-to-detect next to this floor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from paychaos.contracts.errors import StackError
from paychaos.contracts.metrics import MetricsSource
from paychaos.contracts.scenario import (
    AlertExpectation,
    CulpritExpectation,
    Expectation,
    LogExpectation,
    MetricExpectation,
    RumExpectation,
    TraceExpectation,
)


def detection_floor_s(
    exp: Expectation,
    *,
    scrape_interval_s: float,
    group_wait_s: float,
    rule_for_s: Mapping[str, float],
) -> float | None:
    """The floor for ``exp`` in seconds from the fault's injection (None: not applicable)."""
    if isinstance(exp, AlertExpectation):
        if exp.absent:
            return None
        floor = alert_fired_floor_s(exp, rule_for_s=rule_for_s)
        return floor + (group_wait_s if exp.notification else 0.0)
    if isinstance(exp, MetricExpectation):
        return None if exp.absent else scrape_interval_s + exp.for_s
    if isinstance(exp, TraceExpectation | LogExpectation | RumExpectation | CulpritExpectation):
        return 0.0
    return None


def culprit_floor_s(exp: CulpritExpectation, rate_per_s: float | None) -> float:
    """A culprit needs ``min_count`` declined checkouts of the tester first. The tester's
    first attempt goes at the injection, one more every ``1 / rate_per_s``: even were
    every attempt declined from the first, the ``min_count``-th comes
    ``(min_count - 1) / rate_per_s`` later (the processor declines only past its
    velocity limit, later still)."""
    return max(0, exp.min_count - 1) / rate_per_s if rate_per_s else 0.0


def alert_fired_floor_s(exp: AlertExpectation, *, rule_for_s: Mapping[str, float]) -> float:
    """The floor of an alert reaching *firing* (the rule's ``for``), before
    Alertmanager's group_wait."""
    return rule_for_s.get(exp.alert, 0.0)


def recovery_floor_s(scrape_interval_s: float) -> float:
    """After the last revert: one scrape (the first sample of the reverted system)."""
    return scrape_interval_s


def blind_delay_s(anchor_unix_s: float, windows: Iterable[tuple[float, float]]) -> float:
    """How long after ``anchor`` monitoring stays blind (a fault on Prometheus active then)."""
    delay = 0.0
    for start, end in windows:
        if start <= anchor_unix_s < end:
            delay = max(delay, end - anchor_unix_s)
    return delay


#: Faults after which Prometheus is a new process (blind until it started again).
RESTARTING_FAULTS = frozenset({"kill", "restart", "docker-crash", "docker-kill", "docker-restart"})


#: ``process_start_time_seconds`` may be rounded down to the second.
START_TIME_PRECISION_S = 1.0


def prometheus_back_at(metrics: MetricsSource, injected_unix_s: float, end_unix_s: float) -> float:
    """When a Prometheus started again after ``injected`` can first have answered: its new
    process's start time. A lower bound: it answers queries only after replaying its
    write-ahead log (~3 s here) and scrapes seconds later, but a condition that needs no
    new sample (a hole in its data: ``time()`` minus the last sample) holds as soon as it
    answers. ``end`` when that cannot be read (no restart seen)."""
    try:
        started = [  # a start time may be whole seconds (Prometheus's own is): up to 1 s early
            s.value
            for s in metrics.query('max(process_start_time_seconds{job="prometheus"})')
            if s.value >= injected_unix_s - START_TIME_PRECISION_S
        ]
    except StackError:
        return end_unix_s
    if not started:
        return end_unix_s
    return min(max(min(started), injected_unix_s), end_unix_s)
