"""Trace checks: spans matching a selector exist, and slow traces blame the right component.

The blame uses the collector's critical-path analysis
(:func:`paychaos.stack.collector.analysis.latency_breakdown`): the dominant contributor
of the matching traces must be the faulted component (service, and a
substring of the span name, or of what the span calls, e.g. ``payment-api`` /
``calls: payments`` for the DB: stack-neutral, it holds for paychaos' API's
``INSERT payments`` and Node's ``pg.query:INSERT postgres`` on the payments table alike).

Example::

    TraceCheck(SpanQuery(service="payment-api", name="POST /api/checkout",
                         min_duration_ms=300), dominant=Dominant(service="payment-api",
                                                                 calls="payments"))
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from paychaos.contracts.errors import StackError
from paychaos.contracts.expectations import CheckContext, CheckMode, Observation, Window
from paychaos.contracts.scenario import CALL_ATTRIBUTES, Dominant
from paychaos.contracts.signals import Span, SpanQuery
from paychaos.stack.collector.analysis import latency_breakdown


class TraceCheck:
    """At least ``min_spans`` spans match; with ``dominant``, their traces blame it."""

    needs: ClassVar[tuple[str, ...]] = ("traces",)
    """The capabilities this expectation type always reads."""

    mode: CheckMode = "eventually"

    def __init__(
        self,
        query: SpanQuery,
        *,
        min_spans: int = 1,
        dominant: Dominant | None = None,
        max_traces: int = 20,
    ) -> None:
        self.query, self.min_spans, self.dominant, self.max_traces = (
            query,
            min_spans,
            dominant,
            max_traces,
        )
        what = " ".join(
            part
            for part in (
                query.service or "",
                repr(query.name) if query.name else "",
                f">= {query.min_duration_ms:g} ms" if query.min_duration_ms is not None else "",
            )
            if part
        )
        self.requires = [*self.needs]
        blamed = ""
        if dominant:
            blamed = f", dominated by {dominant.service or '*'}/{dominant.name_contains or '*'}"
            if dominant.calls:
                blamed += f" calling {dominant.calls!r}"
        self.description = f"spans {what or '(any)'}" + blamed

    def observe(self, ctx: CheckContext, window: Window) -> Observation:
        query = replace(
            self.query,
            since_unix_s=window.since_unix_s,
            until_unix_s=window.until_unix_s,
            limit=max(self.min_spans, self.max_traces),
        )
        try:
            spans = ctx.traces.find_spans(query)
        except StackError as exc:
            return Observation(False, f"cannot query traces: {exc}")
        if len(spans) < self.min_spans:
            return Observation(False, f"{len(spans)} matching span(s), need {self.min_spans}")
        if self.dominant is None:
            return Observation(True, f"{len(spans)} matching span(s)", ctx.clock())
        trace_ids = list(dict.fromkeys(s.trace_id for s in spans))[: self.max_traces]
        try:
            # A trace whose children have not all arrived yet (export batches) would
            # blame its root: analyse only traces with more than their root span.
            traces = [t for t in (ctx.traces.get_trace(i) for i in trace_ids) if len(t) > 1]
        except StackError as exc:
            return Observation(False, f"cannot fetch traces: {exc}")
        if not traces:
            return Observation(False, "matching traces are still incomplete")
        breakdown = latency_breakdown(traces)
        top = breakdown.dominant
        if top is None:
            return Observation(False, "matching traces have no spans to analyse")
        ok = (
            self.dominant.service in (None, top.service)
            and self.dominant.name_contains in top.name
            and top.share >= self.dominant.min_share
            and (
                not self.dominant.calls
                or any(
                    calls(span, self.dominant.calls)
                    for trace in traces
                    for span in trace
                    if span.service == top.service and span.name == top.name
                )
            )
        )
        verdict = "dominant" if ok else "dominant is not the expected component"
        others = "; ".join(
            f"{c.service}/{c.name} {c.share:.0%}" for c in breakdown.contributors[1:3]
        )
        detail = f"{verdict}: {top.describe()}" + (f"; then {others}" if others else "")
        return Observation(ok, detail, ctx.clock() if ok else None)


def calls(span: Span, text: str) -> bool:
    """True when ``text`` is in the span's name or in what it calls (:data:`CALL_ATTRIBUTES`)."""
    if text in span.name:
        return True
    return any(text in str(span.attributes.get(key, "")) for key in CALL_ATTRIBUTES)
