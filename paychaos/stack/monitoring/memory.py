"""An in-memory :class:`~paychaos.stack.monitoring.promapi.MetricsSource` for tests.

Code that consumes metrics (expectation checks, reports) is tested against
canned answers instead of a running Prometheus. Answers are keyed by the exact
PromQL text; an answer can be a list of samples or a function of the
evaluation time, so a test can make a signal appear after a while.

Example::

    source = InMemoryMetricsSource()
    source.set_query('up{job="gateway"}', [Sample({"job": "gateway"}, 0.0)])
    source.add_alert(ActiveAlert("ServiceDown", "firing", {"job": "gateway"}))
    check(source)                      # the code under test
    assert source.queries == ['up{job="gateway"}']
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from paychaos.contracts.errors import StackError
from paychaos.contracts.metrics import ActiveAlert, Sample, Series

Answer = Sequence[Sample] | Callable[[float], Sequence[Sample]]


class InMemoryMetricsSource:
    """A :class:`MetricsSource` answering from canned data; records every query.

    An expression with no canned answer returns ``[]`` (like PromQL for a
    series that does not exist) unless ``strict=True``, where it raises
    :class:`StackError` as a broken Prometheus would. ``clock`` supplies the
    evaluation time when ``at`` is not given.
    """

    def __init__(self, *, strict: bool = False, clock: Callable[[], float] = time.time) -> None:
        self.strict = strict
        self.clock = clock
        self.queries: list[str] = []
        self._answers: dict[str, Answer] = {}
        self._ranges: dict[str, list[Series]] = {}
        self._alerts: list[ActiveAlert] = []

    def set_query(self, expr: str, answer: Answer) -> None:
        """Answer ``expr`` with ``answer`` (samples, or a function of the eval time)."""
        self._answers[expr] = answer if callable(answer) else list(answer)

    def set_query_range(self, expr: str, series: Iterable[Series]) -> None:
        """Answer ``query_range(expr, ...)`` with ``series`` (the time span is ignored)."""
        self._ranges[expr] = list(series)

    def add_alert(self, alert: ActiveAlert) -> None:
        self._alerts.append(alert)

    def clear_alerts(self) -> None:
        self._alerts.clear()

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        self.queries.append(expr)
        answer = self._answers.get(expr)
        if answer is None:
            if self.strict:
                raise StackError(f"in-memory metrics source: no answer for {expr!r}")
            return []
        if callable(answer):
            return list(answer(self.clock() if at is None else at))
        return list(answer)

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[Series]:
        self.queries.append(expr)
        if expr not in self._ranges and self.strict:
            raise StackError(f"in-memory metrics source: no range answer for {expr!r}")
        return [
            Series(s.labels, tuple(p for p in s.points if start <= p[0] <= end))
            for s in self._ranges.get(expr, [])
        ]

    def alerts(self) -> list[ActiveAlert]:
        return list(self._alerts)
