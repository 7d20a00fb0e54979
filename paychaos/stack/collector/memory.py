"""In-memory trace, log, RUM and alert sources, for tests of checks.

Follows exactly the semantics of :mod:`paychaos.contracts.signals` (each query's
``matches``; newest first, ties broken by insertion order, newest first), so a
check tested against it behaves the same against the SQLite store or the
HTTP client.

Example::

    source = InMemorySources()
    source.add_spans([span])
    assert source.find_spans(SpanQuery(name="POST /checkout"))
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from paychaos.contracts.signals import (
    AlertNotification,
    AlertQuery,
    LogQuery,
    LogRecord,
    RumItem,
    RumQuery,
    Span,
    SpanQuery,
)

T = TypeVar("T")


def _newest(
    items: Sequence[T], match: Callable[[T], bool], time_of: Callable[[T], int], limit: int
) -> list[T]:
    indexed = [(time_of(item), index, item) for index, item in enumerate(items) if match(item)]
    indexed.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
    return [item for _, _, item in indexed[:limit]]


class InMemorySources:
    """Implements ``TraceSource``, ``LogSource``, ``RumSource`` and ``AlertNotificationSource``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[Span] = []
        self._logs: list[LogRecord] = []
        self._rum: list[RumItem] = []
        self._alerts: list[AlertNotification] = []

    def add_spans(self, spans: Iterable[Span]) -> None:
        with self._lock:
            self._spans.extend(spans)

    def add_logs(self, records: Iterable[LogRecord]) -> None:
        with self._lock:
            self._logs.extend(records)

    def add_rum(self, items: Iterable[RumItem]) -> None:
        with self._lock:
            self._rum.extend(items)

    def add_alerts(self, alerts: Iterable[AlertNotification]) -> None:
        with self._lock:
            self._alerts.extend(alerts)

    def find_spans(self, query: SpanQuery) -> list[Span]:
        with self._lock:
            items = list(self._spans)
        return _newest(items, query.matches, lambda s: s.start_unix_ns, query.limit)

    def get_trace(self, trace_id: str) -> list[Span]:
        wanted = trace_id.lower()
        with self._lock:
            spans = [
                (s.start_unix_ns, i, s) for i, s in enumerate(self._spans) if s.trace_id == wanted
            ]
        spans.sort(key=lambda entry: (entry[0], entry[1]))
        return [s for _, _, s in spans]

    def find_logs(self, query: LogQuery) -> list[LogRecord]:
        with self._lock:
            items = list(self._logs)
        return _newest(items, query.matches, lambda r: r.time_unix_ns, query.limit)

    def find_rum(self, query: RumQuery) -> list[RumItem]:
        with self._lock:
            items = list(self._rum)
        return _newest(items, query.matches, lambda r: r.time_unix_ns, query.limit)

    def find_alert_notifications(self, query: AlertQuery) -> list[AlertNotification]:
        with self._lock:
            items = list(self._alerts)
        return _newest(items, query.matches, lambda a: a.received_unix_ns, query.limit)
