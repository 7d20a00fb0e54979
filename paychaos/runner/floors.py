"""The fastest detection the monitoring machinery allows (the *floor*), per expectation.

For an alert expectation::

    floor = for                      # the rule's `for:` (pending → firing)
          + evaluation_interval      # the scrape that first sees the fault's effect and the
                                     # evaluation that first sees that sample: each waits
                                     # 0..interval, one interval on average for both
          + group_wait               # Alertmanager's first notification (if required)

A threshold over a rate window adds a warm-up the floor leaves out on purpose
(it depends on the fault's strength): enough bad samples must enter the
window, e.g. a p95 over a 1m window needs 5 % of the minute (3 s) to be slow.
The bench reports measured time-to-detect next to this floor.

For a metric expectation the floor is one scrape plus its ``for_s``; for
traces and logs the services' OTLP batch delay (0.5 s); for RUM the simulated
browser's push interval (1 s). Ledger, hygiene and must-not-fire expectations
have no floor. While a fault blinds Prometheus itself (``process/prometheus``),
metric and alert floors start when it is back (:func:`blind_delay_s`).

Recovery: one scrape after the last revert, plus the longest range window
in the steady-state probes checked after (:func:`recovery_floor_s`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from paychaos.contracts.scenario import (
    AlertExpectation,
    Expectation,
    LogExpectation,
    MetricExpectation,
    RumExpectation,
    TraceExpectation,
)

OTLP_BATCH_DELAY_S = 0.5
RUM_PUSH_INTERVAL_S = 1.0


def detection_floor_s(
    exp: Expectation,
    *,
    scrape_interval_s: float,
    evaluation_interval_s: float,
    group_wait_s: float,
    rule_for_s: Mapping[str, float],
) -> float | None:
    """The floor for ``exp`` in seconds from the fault's injection (None: not applicable)."""
    if isinstance(exp, AlertExpectation):
        if exp.absent:
            return None
        floor = alert_fired_floor_s(
            exp, evaluation_interval_s=evaluation_interval_s, rule_for_s=rule_for_s
        )
        return floor + (group_wait_s if exp.notification else 0.0)
    if isinstance(exp, MetricExpectation):
        return None if exp.absent else scrape_interval_s + exp.for_s
    if isinstance(exp, TraceExpectation | LogExpectation):
        return OTLP_BATCH_DELAY_S
    if isinstance(exp, RumExpectation):
        return RUM_PUSH_INTERVAL_S
    return None


def alert_fired_floor_s(
    exp: AlertExpectation, *, evaluation_interval_s: float, rule_for_s: Mapping[str, float]
) -> float:
    """The floor of an alert reaching *firing* (the rule's ``for`` + one evaluation),
    before Alertmanager's group_wait."""
    return rule_for_s.get(exp.alert, 0.0) + evaluation_interval_s


_RANGE = re.compile(r"\[(\d+(?:\.\d+)?)(ms|s|m|h)\]")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def longest_range_s(queries: Iterable[str]) -> float:
    """The longest range selector (``[15s]``, ``[1m]``) in the PromQL ``queries``."""
    return max(
        (float(m.group(1)) * _UNIT_S[m.group(2)] for q in queries for m in _RANGE.finditer(q)),
        default=0.0,
    )


def recovery_floor_s(scrape_interval_s: float, probe_queries: Iterable[str] = ()) -> float:
    """After the last revert: one scrape, plus the longest window of the after-probes
    (a ratio over ``[15s]`` only drops back once the fault's samples left the window)."""
    return scrape_interval_s + longest_range_s(probe_queries)


def blind_delay_s(anchor_unix_s: float, windows: Iterable[tuple[float, float]]) -> float:
    """How long after ``anchor`` monitoring stays blind (a fault on Prometheus active then)."""
    delay = 0.0
    for start, end in windows:
        if start <= anchor_unix_s < end:
            delay = max(delay, end - anchor_unix_s)
    return delay
