"""Turn a scenario's typed expectation into a ready :class:`~paychaos.contracts.expectations.Check`."""

from __future__ import annotations

from typing import Any

from paychaos.checks.alert import AlertCheck
from paychaos.checks.culprit import CulpritCheck
from paychaos.checks.hygiene import HygieneCheck
from paychaos.checks.ledger import LedgerCheck
from paychaos.checks.log import LogCheck
from paychaos.checks.metric import MetricCheck
from paychaos.checks.rum import RumCheck
from paychaos.checks.trace import TraceCheck
from paychaos.contracts.expectations import Check
from paychaos.contracts.scenario import (
    AlertExpectation,
    CulpritExpectation,
    Expectation,
    HygieneExpectation,
    LedgerExpectation,
    LogExpectation,
    MetricExpectation,
    RumExpectation,
    TraceExpectation,
)
from paychaos.contracts.signals import LogQuery, RumQuery, SpanQuery

#: Every expectation type's check class (its ``needs``: the capabilities it reads).
CHECKS: dict[str, Any] = {
    "metric": MetricCheck,
    "alert": AlertCheck,
    "trace": TraceCheck,
    "log": LogCheck,
    "rum": RumCheck,
    "ledger": LedgerCheck,
    "hygiene": HygieneCheck,
    "culprit": CulpritCheck,
}
#: expectation type → capabilities it always needs (``paychaos target check`` shows it).
EXPECTATION_NEEDS: dict[str, list[str]] = {k: list(c.needs) for k, c in CHECKS.items()}


def build_check(exp: Expectation) -> Check:
    """A fresh check (checks keep per-run state) for one expectation."""
    if isinstance(exp, MetricExpectation):
        return MetricCheck(
            exp.query, exp.op, exp.value, for_s=exp.for_s, every=exp.every, absent=exp.absent
        )
    if isinstance(exp, AlertExpectation):
        return AlertCheck(exp.alert, exp.labels, notification=exp.notification, absent=exp.absent)
    if isinstance(exp, TraceExpectation):
        query = SpanQuery(
            service=exp.service,
            name=exp.span,
            attributes=dict(exp.attributes),
            min_duration_ms=exp.min_duration_ms,
            max_duration_ms=exp.max_duration_ms,
            status=exp.status,
        )
        return TraceCheck(
            query,
            min_spans=exp.min_spans,
            dominant=exp.dominant,
            max_traces=exp.max_traces,
            calls=exp.calls,
            error=exp.error,
        )
    if isinstance(exp, LogExpectation):
        query_log = LogQuery(
            level=exp.level,
            service=exp.service,
            body_contains=exp.body_contains,
            attributes=dict(exp.attributes),
        )
        return LogCheck(query_log, min_count=exp.min_count, correlated=exp.correlated)
    if isinstance(exp, RumExpectation):
        query_rum = RumQuery(kind=exp.kind, name=exp.rum_name, attributes=dict(exp.attributes))
        return RumCheck(query_rum, min_count=exp.min_count)
    if isinstance(exp, LedgerExpectation):
        return LedgerCheck(
            max_lost=exp.max_lost, max_double_charges=exp.max_double_charges, settle_s=exp.settle_s
        )
    if isinstance(exp, HygieneExpectation):
        return HygieneCheck(exp.signals)
    if isinstance(exp, CulpritExpectation):
        return CulpritCheck(
            step=exp.after,
            signal=exp.signal,
            attribute=exp.attribute,
            min_share=exp.min_share,
            min_count=exp.min_count,
        )
    raise TypeError(f"no check for expectation type {type(exp).__name__}")
