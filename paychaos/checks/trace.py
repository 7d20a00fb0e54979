"""Trace checks: spans matching a selector exist, and slow traces blame the right component.

The blame uses the collector's critical-path analysis
(:func:`paychaos.stack.collector.analysis.latency_breakdown`): the dominant contributor
of the matching traces must be the faulted component (service, and a
substring of the span name, or of what the span calls, e.g. ``payment-api`` /
``calls: payments`` for the DB: stack-neutral, it holds for paychaos' API's
``INSERT payments`` and Node's ``pg.query:INSERT postgres`` on the payments table alike;
``calls: postgresql`` also for Node's ``pg.connect``, which names no table).
The spans themselves can be narrowed the same way (``calls``, e.g. the gateway call by
its URL) and by what their error was (``error: timeout``, :func:`error_category`).

Example::

    TraceCheck(SpanQuery(service="payment-api", name="POST /api/checkout",
                         min_duration_ms=300), dominant=Dominant(service="payment-api",
                                                                 calls="payments"))
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import ClassVar

from paychaos.contracts.errors import StackError
from paychaos.contracts.expectations import CheckContext, CheckMode, Observation, Window
from paychaos.contracts.scenario import CALL_ATTRIBUTES, Dominant, ErrorCategory
from paychaos.contracts.signals import Span, SpanQuery
from paychaos.stack.collector.analysis import latency_breakdown

#: How many of the query's newest spans ``calls``/``error`` pick from.
NARROWED_CANDIDATES = 200


class TraceCheck:
    """At least ``min_spans`` spans match; with ``dominant``, their traces blame it.

    ``calls`` and ``error`` narrow the query's spans to those that call that
    (:func:`calls`) and failed with an error of that category (:func:`error_category`),
    read from the backend's answer (its :data:`NARROWED_CANDIDATES` newest matching spans:
    a Tempo backend fetches a trace per candidate).
    """

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
        calls: str = "",
        error: ErrorCategory | None = None,
    ) -> None:
        if error is not None and query.status is None:
            query = replace(query, status="error")
        if error is not None and query.status != "error":
            raise ValueError(f"error: {error} selects failed spans, not status {query.status}")
        self.query, self.min_spans, self.dominant, self.max_traces = (
            query,
            min_spans,
            dominant,
            max_traces,
        )
        self.calls, self.error = calls, error
        what = " ".join(
            part
            for part in (
                query.service or "",
                repr(query.name) if query.name else "",
                f"calling {calls!r}" if calls else "",
                f"failed by {error}" if error else "",
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
            limit=(
                max(self.min_spans, NARROWED_CANDIDATES)
                if self.calls or self.error
                else max(self.min_spans, self.max_traces)
            ),
        )
        try:
            spans = ctx.traces.find_spans(query)
        except StackError as exc:
            return Observation(False, f"cannot query traces: {exc}")
        spans = [
            s
            for s in spans
            if (not self.calls or calls(s, self.calls))
            and (self.error is None or error_category(s) == self.error)
        ]
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


#: A timeout as the stacks spell it: ``TimeoutError`` (Python), ``ETIMEDOUT`` (Node's
#: errno), ``timeout`` (OpenTelemetry's example ``error.type``), "timeout exceeded when
#: trying to connect" / "Query read timeout" (node-postgres), "timed out" (many).
_TIMEOUT = re.compile(r"time[ _-]?d?[ _-]?out", re.IGNORECASE)


def error_category(span: Span) -> ErrorCategory | None:
    """The category of a failed span's error, or None (not failed, or not a known category).

    Read where OpenTelemetry puts what went wrong: the ``error.type`` attribute, the
    ``exception.type`` and ``exception.message`` of its exception events, and the status
    description (Node's pg instrumentation sets no ``error.type`` on a pool connect that
    timed out, only the error's message as the status description).
    """
    if span.status != "error":
        return None
    texts = [str(span.attributes.get("error.type", "")), span.status_message]
    for event in span.events:
        if event.name == "exception":
            texts += [
                str(event.attributes.get(k, "")) for k in ("exception.type", "exception.message")
            ]
    if any(_TIMEOUT.search(text) for text in texts):
        return "timeout"
    return None
