"""The collector's query API on the wire: queries as URL parameters, results as JSON.

Shared by the HTTP server (:mod:`paychaos.stack.collector.app`) and the HTTP client
(:mod:`paychaos.stack.collector.client`) so both sides agree by construction.

Parameters are the query dataclass fields by name (``service``,
``min_duration_ms``, ``since_unix_s``, ``limit``...), and one parameter per
attribute: ``attr.<key>=<value>`` (``label.<key>=<value>`` for alerts), e.g.
``/api/spans?service=payment-api&attr.payment.method=amex&min_duration_ms=2000``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, TypeVar, get_args

from paychaos.contracts.signals import (
    AlertNotification,
    AlertQuery,
    AlertStatus,
    LogQuery,
    LogRecord,
    RumItem,
    RumKind,
    RumQuery,
    Span,
    SpanEvent,
    SpanKind,
    SpanQuery,
    SpanStatus,
    attribute_text,
)

Q = TypeVar("Q", SpanQuery, LogQuery, RumQuery, AlertQuery)

_MAPPING_PREFIX = {"attributes": "attr.", "labels": "label."}
_CHOICES: dict[str, tuple[str, ...]] = {
    "status": (*get_args(SpanStatus), *get_args(AlertStatus)),
    "kind": (*get_args(SpanKind), *get_args(RumKind)),
}


def query_to_params(query: SpanQuery | LogQuery | RumQuery | AlertQuery) -> list[tuple[str, str]]:
    """URL parameters for a query (fields left at ``None`` are omitted)."""
    params: list[tuple[str, str]] = []
    for f in dataclasses.fields(query):
        value = getattr(query, f.name)
        if f.name in _MAPPING_PREFIX:
            prefix = _MAPPING_PREFIX[f.name]
            params.extend((prefix + key, attribute_text(v)) for key, v in value.items())
        elif value is not None:
            params.append((f.name, str(value)))
    return params


def query_from_params(cls: type[Q], params: Iterable[tuple[str, str]]) -> Q:
    """Build a query from URL parameters; raise ``ValueError`` naming the bad parameter."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    mapping_field = next((name for name in _MAPPING_PREFIX if name in fields), None)
    prefix = _MAPPING_PREFIX[mapping_field] if mapping_field else None
    values: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    for key, raw in params:
        if prefix and key.startswith(prefix) and len(key) > len(prefix):
            mapping[key[len(prefix) :]] = raw
            continue
        if key not in fields or key in _MAPPING_PREFIX:
            known = sorted(name for name in fields if name not in _MAPPING_PREFIX)
            hint = f", or {prefix}<key>" if prefix else ""
            raise ValueError(f"unknown parameter {key!r}; known: {', '.join(known)}{hint}")
        values[key] = _convert(key, raw)
    if mapping_field:
        values[mapping_field] = mapping
    return cls(**values)


def _convert(name: str, raw: str) -> Any:
    try:
        if name == "limit":
            return int(raw)
        if name.endswith(("_ms", "_unix_s")):
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"parameter {name} must be a number, got {raw!r}") from exc
    if name in _CHOICES and raw not in _CHOICES[name]:
        raise ValueError(
            f"parameter {name} must be one of {', '.join(_CHOICES[name])}, got {raw!r}"
        )
    return raw


def to_json(item: Span | LogRecord | RumItem | AlertNotification) -> dict[str, Any]:
    """A result as a JSON-ready dict (spans also get ``duration_ms`` for humans)."""
    out = dataclasses.asdict(item)
    if isinstance(item, Span):
        out["duration_ms"] = item.duration_ms
    return out


def _known(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {key: value for key, value in data.items() if key in names}


def span_from_json(data: dict[str, Any]) -> Span:
    values = _known(Span, data)
    values["events"] = tuple(SpanEvent(**_known(SpanEvent, e)) for e in data.get("events", ()))
    return Span(**values)


def log_from_json(data: dict[str, Any]) -> LogRecord:
    return LogRecord(**_known(LogRecord, data))


def rum_from_json(data: dict[str, Any]) -> RumItem:
    values = _known(RumItem, data)
    values["frames"] = tuple(data.get("frames", ()))
    return RumItem(**values)


def alert_from_json(data: dict[str, Any]) -> AlertNotification:
    return AlertNotification(**_known(AlertNotification, data))
