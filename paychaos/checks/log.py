"""Log checks: matching records appear, correlated to traces that exist.

Correlated means the record carries a ``trace_id`` and the trace source holds
that trace (the log points somewhere a human can click through to).

Example::

    LogCheck(LogQuery(level="error", body_contains="database unavailable"), min_count=3)
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from paychaos.contracts.errors import StackError
from paychaos.contracts.expectations import CheckContext, CheckMode, Observation, Window
from paychaos.contracts.signals import LogQuery

#: At most this many distinct traces are fetched per poll to prove correlation.
MAX_TRACE_LOOKUPS = 20


class LogCheck:
    """At least ``min_count`` matching records (each with an existing trace if ``correlated``)."""

    needs: ClassVar[tuple[str, ...]] = ("logs",)
    """The capabilities this expectation type always reads."""

    mode: CheckMode = "eventually"

    def __init__(self, query: LogQuery, *, min_count: int = 1, correlated: bool = True) -> None:
        self.query, self.min_count, self.correlated = query, min_count, correlated
        parts = [
            query.level or "",
            query.service or "",
            repr(query.body_contains) if query.body_contains else "",
        ]
        self.requires = [*self.needs, *(["traces"] if correlated else [])]
        self.description = (
            f"logs {' '.join(p for p in parts if p) or '(any)'}"
            + (f" x{min_count}" if min_count > 1 else "")
            + (", correlated to traces" if correlated else "")
        )
        self._known_traces: set[str] = set()

    def observe(self, ctx: CheckContext, window: Window) -> Observation:
        query = replace(
            self.query, since_unix_s=window.since_unix_s, until_unix_s=window.until_unix_s
        )
        try:
            records = ctx.logs.find_logs(query)
        except StackError as exc:
            return Observation(False, f"cannot query logs: {exc}")
        if not self.correlated:
            ok = len(records) >= self.min_count
            return Observation(
                ok, f"{len(records)} matching record(s)", ctx.clock() if ok else None
            )
        count, lookups, uncorrelated = 0, 0, 0
        for record in records:
            trace_id = record.trace_id
            if not trace_id:
                uncorrelated += 1
                continue
            if trace_id not in self._known_traces:
                if lookups >= MAX_TRACE_LOOKUPS:
                    continue
                lookups += 1
                try:
                    if not ctx.traces.get_trace(trace_id):
                        uncorrelated += 1
                        continue
                except StackError as exc:
                    return Observation(False, f"cannot fetch trace {trace_id}: {exc}")
                self._known_traces.add(trace_id)
            count += 1
            if count >= self.min_count:
                break
        ok = count >= self.min_count
        detail = f"{count} correlated record(s) of {len(records)} matching"
        if uncorrelated:
            detail += f" ({uncorrelated} without a stored trace)"
        return Observation(ok, detail, ctx.clock() if ok else None)
