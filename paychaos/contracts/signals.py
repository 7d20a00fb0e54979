"""Read-only interfaces to the telemetry the checks look for: traces, logs, RUM, alerts.

A check never knows which backend answers it. The embedded stack's collector
(``paychaos.stack.collector``: SQLite in-process, or its HTTP client from another
process) implements these protocols today; a Tempo (TraceQL) or Loki (LogQL)
backend can implement them later without a check changing.

The data are frozen dataclasses; the queries are frozen dataclasses whose
fields carry their units (``min_duration_ms``, ``since_unix_s``) and whose
:meth:`matches` method is the reference semantics every backend follows::

    spans = source.find_spans(SpanQuery(service="payment-api", min_duration_ms=2000))
    trace = source.get_trace(spans[0].trace_id)

Semantics shared by every query:

- every field left ``None`` (or empty) does not filter;
- ``attributes`` (``labels`` for alerts) match on equality of every given key,
  compared through :func:`attribute_text` (so ``500`` matches ``"500"``);
- the time window is ``since_unix_s <= t < until_unix_s``;
- results are newest first, at most ``limit`` of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

import orjson

AttributeValue: TypeAlias = (
    "str | bool | int | float | list[AttributeValue] | dict[str, AttributeValue] | None"
)
"""A JSON-like attribute value (OTLP ``AnyValue``, Faro string maps, alert labels)."""

SpanStatus = Literal["unset", "ok", "error"]
SpanKind = Literal["unspecified", "internal", "server", "client", "producer", "consumer"]
RumKind = Literal["event", "exception", "measurement", "log"]
AlertStatus = Literal["firing", "resolved"]

LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")
DEFAULT_LIMIT = 1000

_NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000


def attribute_text(value: AttributeValue) -> str:
    """The canonical text form attributes are compared (and indexed) by.

    >>> [attribute_text(v) for v in ("visa", 500, True, 1.5)]
    ['visa', '500', 'true', '1.5']
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return ""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _attributes_match(
    wanted: Mapping[str, AttributeValue], have: Mapping[str, AttributeValue]
) -> bool:
    for key, value in wanted.items():
        if key not in have or attribute_text(have[key]) != attribute_text(value):
            return False
    return True


def _in_window(time_unix_ns: int, since_unix_s: float | None, until_unix_s: float | None) -> bool:
    if since_unix_s is not None and time_unix_ns < int(since_unix_s * _NS_PER_S):
        return False
    return not (until_unix_s is not None and time_unix_ns >= int(until_unix_s * _NS_PER_S))


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class SpanEvent:
    """A timed annotation inside a span (e.g. an exception)."""

    name: str
    time_unix_ns: int
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Span:
    """One finished span, ids as lowercase hex (32 chars trace, 16 chars span)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service: str
    kind: SpanKind
    start_unix_ns: int
    end_unix_ns: int
    status: SpanStatus = "unset"
    status_message: str = ""
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    resource_attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    scope: str = ""
    events: tuple[SpanEvent, ...] = ()

    @property
    def duration_ns(self) -> int:
        return self.end_unix_ns - self.start_unix_ns

    @property
    def duration_ms(self) -> float:
        return self.duration_ns / _NS_PER_MS


@dataclass(frozen=True)
class LogRecord:
    """One log record; ``level`` is one of :data:`LOG_LEVELS` (from the severity number)."""

    time_unix_ns: int
    level: str
    body: str
    service: str
    severity_number: int = 0
    severity_text: str = ""
    trace_id: str | None = None
    span_id: str | None = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    resource_attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    scope: str = ""


@dataclass(frozen=True)
class RumItem:
    """One real-user-monitoring item pushed by the browser (Faro).

    ``name`` is the event name, the exception type, the web vital (``LCP``,
    ``INP``, ``CLS``, ``FCP``, ``TTFB``, ``FID``: one item per vital) or other
    measurement type, or the log level. ``attributes`` are the event
    attributes, the exception or log context, or the measurement context (a web
    vital's also carries ``measurement.type``: ``web-vitals``); ``values`` the
    measurement values as sent (web vitals in ms, CLS unitless, e.g.
    ``{"lcp": 2800.5}``); ``frames`` an exception's stack trace, frame by
    frame in the order and shape the browser SDK sends (``filename``,
    ``function``, ``lineno``, ``colno``...).
    """

    kind: RumKind
    name: str
    time_unix_ns: int
    message: str = ""
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    values: Mapping[str, float] = field(default_factory=dict)
    trace_id: str | None = None
    span_id: str | None = None
    session_id: str | None = None
    page_url: str | None = None
    app_name: str | None = None
    frames: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class AlertNotification:
    """One alert as delivered in an Alertmanager webhook notification."""

    alertname: str
    status: AlertStatus
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str
    ends_at: str
    received_unix_ns: int
    receiver: str = ""
    group_key: str = ""
    notification_status: str = ""
    generator_url: str = ""
    fingerprint: str = ""


# ------------------------------------------------------------------------ queries


@dataclass(frozen=True)
class SpanQuery:
    """Which spans to find; the time window applies to the span start."""

    service: str | None = None
    name: str | None = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    min_duration_ms: float | None = None
    max_duration_ms: float | None = None
    since_unix_s: float | None = None
    until_unix_s: float | None = None
    status: SpanStatus | None = None
    kind: SpanKind | None = None
    trace_id: str | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        _check_limit(self.limit)

    def matches(self, span: Span) -> bool:
        if self.service is not None and span.service != self.service:
            return False
        if self.name is not None and span.name != self.name:
            return False
        if self.status is not None and span.status != self.status:
            return False
        if self.kind is not None and span.kind != self.kind:
            return False
        if self.trace_id is not None and span.trace_id != self.trace_id.lower():
            return False
        if (
            self.min_duration_ms is not None
            and span.duration_ns < self.min_duration_ms * _NS_PER_MS
        ):
            return False
        if (
            self.max_duration_ms is not None
            and span.duration_ns > self.max_duration_ms * _NS_PER_MS
        ):
            return False
        if not _in_window(span.start_unix_ns, self.since_unix_s, self.until_unix_s):
            return False
        return _attributes_match(self.attributes, span.attributes)


@dataclass(frozen=True)
class LogQuery:
    """Which log records to find; ``body_contains`` is a case-sensitive substring."""

    level: str | None = None
    service: str | None = None
    trace_id: str | None = None
    body_contains: str | None = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    since_unix_s: float | None = None
    until_unix_s: float | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        _check_limit(self.limit)
        if self.level is not None and self.level not in LOG_LEVELS:
            raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}, got {self.level!r}")

    def matches(self, record: LogRecord) -> bool:
        if self.level is not None and record.level != self.level:
            return False
        if self.service is not None and record.service != self.service:
            return False
        if self.trace_id is not None and record.trace_id != self.trace_id.lower():
            return False
        if self.body_contains is not None and self.body_contains not in record.body:
            return False
        if not _in_window(record.time_unix_ns, self.since_unix_s, self.until_unix_s):
            return False
        return _attributes_match(self.attributes, record.attributes)


@dataclass(frozen=True)
class RumQuery:
    """Which RUM items to find (``kind`` and ``name`` e.g. ``event``/``click_payment_button``)."""

    kind: RumKind | None = None
    name: str | None = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    session_id: str | None = None
    since_unix_s: float | None = None
    until_unix_s: float | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        _check_limit(self.limit)

    def matches(self, item: RumItem) -> bool:
        if self.kind is not None and item.kind != self.kind:
            return False
        if self.name is not None and item.name != self.name:
            return False
        if self.session_id is not None and item.session_id != self.session_id:
            return False
        if not _in_window(item.time_unix_ns, self.since_unix_s, self.until_unix_s):
            return False
        return _attributes_match(self.attributes, item.attributes)


@dataclass(frozen=True)
class AlertQuery:
    """Which alert notifications to find; the time window applies to reception."""

    alertname: str | None = None
    status: AlertStatus | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    receiver: str | None = None
    since_unix_s: float | None = None
    until_unix_s: float | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        _check_limit(self.limit)

    def matches(self, alert: AlertNotification) -> bool:
        if self.alertname is not None and alert.alertname != self.alertname:
            return False
        if self.status is not None and alert.status != self.status:
            return False
        if self.receiver is not None and alert.receiver != self.receiver:
            return False
        if not _in_window(alert.received_unix_ns, self.since_unix_s, self.until_unix_s):
            return False
        return _attributes_match(self.labels, alert.labels)


# ---------------------------------------------------------------------- protocols


@runtime_checkable
class TraceSource(Protocol):
    """Where spans can be searched and whole traces fetched."""

    def find_spans(self, query: SpanQuery) -> list[Span]:
        """Spans matching ``query``, newest start first."""
        ...

    def get_trace(self, trace_id: str) -> list[Span]:
        """Every stored span of one trace, earliest start first (empty if unknown)."""
        ...


@runtime_checkable
class LogSource(Protocol):
    """Where log records can be searched."""

    def find_logs(self, query: LogQuery) -> list[LogRecord]:
        """Log records matching ``query``, newest first."""
        ...


@runtime_checkable
class RumSource(Protocol):
    """Where browser RUM events, exceptions, measurements and logs can be searched."""

    def find_rum(self, query: RumQuery) -> list[RumItem]:
        """RUM items matching ``query``, newest first."""
        ...


@runtime_checkable
class AlertNotificationSource(Protocol):
    """Where the alert notifications Alertmanager delivered can be searched."""

    def find_alert_notifications(self, query: AlertQuery) -> list[AlertNotification]:
        """Alerts matching ``query``, most recently received first."""
        ...


__all__ = [
    "DEFAULT_LIMIT",
    "LOG_LEVELS",
    "AlertNotification",
    "AlertNotificationSource",
    "AlertQuery",
    "AlertStatus",
    "AttributeValue",
    "LogQuery",
    "LogRecord",
    "LogSource",
    "RumItem",
    "RumKind",
    "RumQuery",
    "RumSource",
    "Span",
    "SpanEvent",
    "SpanKind",
    "SpanQuery",
    "SpanStatus",
    "TraceSource",
    "attribute_text",
]
