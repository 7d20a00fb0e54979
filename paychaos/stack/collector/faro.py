"""Grafana Faro web SDK payloads, as Alloy's ``faro.receiver`` takes them on ``POST /collect``.

The shape follows the SDK's own types (grafana/faro-web-sdk):
``packages/core/src/transports/types.ts`` (``TransportBody``: ``meta``,
``exceptions``, ``logs``, ``measurements``, ``traces``, ``events``),
``packages/core/src/api/{events,exceptions,logs,measurements}/types.ts`` and
``packages/core/src/metas/types.ts`` (``app``, ``session``, ``page``, ...).
``traces`` is an OTLP JSON trace export (``resourceSpans``), stored as spans.

Example body::

    {"meta": {"app": {"name": "shop"}, "session": {"id": "s1"},
              "page": {"url": "https://shop.example/checkout"}},
     "events": [{"name": "click_payment_button", "timestamp": "2024-05-01T10:00:00.000Z",
                 "attributes": {"method": "visa", "cart_value": "100.00"}}],
     "measurements": [{"type": "web-vitals", "values": {"lcp": 1834.2},
                       "timestamp": "2024-05-01T10:00:00.000Z"}]}

What is stored (one :class:`RumItem` each):

- an event under its name (``click_payment_button``);
- an exception under its type, its value as the message and its stack trace's
  frames as Faro sends them (``filename``, ``function``, ``lineno``, ``colno``,
  ``module``...) in ``frames``;
- a ``web-vitals`` measurement once per vital it carries, under the vital's own
  name (``LCP``, ``INP``, ``CLS``, ``FCP``, ``TTFB``, ``FID``), its values as sent
  (``{"lcp": 2800.5}``, plus any companions such as ``delta``); other
  measurements under their type;
- a log under its level.

A body that is not a Faro payload (not a JSON object, or without ``meta``, which
the SDK sends with every batch) is refused with a sentence naming what is wrong.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from paychaos.contracts.messages import field_errors, json_error, summary
from paychaos.contracts.signals import AttributeValue, RumItem, RumKind

from .otlp import ExportTraceServiceRequest, MalformedPayload, parse_json_document

#: Faro's web-vitals indicators (``values`` keys) and the names they are stored under.
WEB_VITALS = {
    "lcp": "LCP",
    "inp": "INP",
    "cls": "CLS",
    "fcp": "FCP",
    "ttfb": "TTFB",
    "fid": "FID",
}
_NOT_FARO = "not a Faro payload"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class FaroTrace(_Model):
    trace_id: str | None = None
    span_id: str | None = None


class FaroApp(_Model):
    name: str | None = None
    version: str | None = None
    environment: str | None = None


class FaroSession(_Model):
    id: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)


class FaroPage(_Model):
    id: str | None = None
    url: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)


class FaroMeta(_Model):
    app: FaroApp = Field(default_factory=FaroApp)
    session: FaroSession = Field(default_factory=FaroSession)
    page: FaroPage = Field(default_factory=FaroPage)


class FaroEvent(_Model):
    name: str
    timestamp: str | None = None
    domain: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    trace: FaroTrace | None = None


class FaroStackFrame(BaseModel):
    """``ExceptionStackFrame``: ``filename``, ``function``, optional ``lineno``/``colno``
    (and whatever else the SDK adds, e.g. ``module``), kept as sent."""

    model_config = ConfigDict(extra="allow", frozen=True)

    filename: str = ""
    function: str = ""
    lineno: int | None = None
    colno: int | None = None


class FaroStacktrace(_Model):
    frames: list[FaroStackFrame] = Field(default_factory=list)


class FaroException(_Model):
    type: str
    value: str = ""
    timestamp: str | None = None
    stacktrace: FaroStacktrace | None = None
    context: dict[str, str] = Field(default_factory=dict)
    trace: FaroTrace | None = None


class FaroMeasurement(_Model):
    type: str
    values: dict[str, float]
    timestamp: str | None = None
    context: dict[str, str] = Field(default_factory=dict)
    trace: FaroTrace | None = None


class FaroLog(_Model):
    message: str = ""
    level: str = "log"
    timestamp: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    trace: FaroTrace | None = None


class FaroPayload(_Model):
    """``TransportBody`` of the Faro web SDK."""

    meta: FaroMeta
    events: list[FaroEvent] = Field(default_factory=list)
    exceptions: list[FaroException] = Field(default_factory=list)
    measurements: list[FaroMeasurement] = Field(default_factory=list)
    logs: list[FaroLog] = Field(default_factory=list)
    traces: dict[str, Any] | None = None


def parse_payload(body: bytes) -> FaroPayload:
    """Validate a Faro body; raise :class:`MalformedPayload` (answered with 400) saying what
    is wrong in plain words: ``not a Faro payload: it has no "meta" ...``."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedPayload(f"{_NOT_FARO}: the body is not JSON: {json_error(exc)}") from None
    if not isinstance(document, dict):
        raise MalformedPayload(f'{_NOT_FARO}: the body must be a JSON object with a "meta"')
    if "meta" not in document:
        present = ", ".join(f'"{key}"' for key in list(document)[:5]) or "nothing"
        raise MalformedPayload(
            f'{_NOT_FARO}: it has no "meta" (the app, session and page the Faro web SDK '
            f"sends with every batch); it has {present}"
        )
    try:
        return FaroPayload.model_validate(document)
    except ValidationError as exc:
        raise MalformedPayload(f"{_NOT_FARO}: {summary(field_errors(exc.errors()))}") from None


def trace_request(payload: FaroPayload) -> ExportTraceServiceRequest:
    """The payload's ``traces`` (an OTLP JSON trace export) as a protobuf request."""
    request = ExportTraceServiceRequest()
    if payload.traces:
        try:
            parse_json_document(dict(payload.traces), request)
        except MalformedPayload as exc:
            raise MalformedPayload(f"{_NOT_FARO}: traces: {exc}") from None
    return request


def _time_ns(timestamp: str | None, default_ns: int) -> int:
    if not timestamp:
        return default_ns
    try:
        return int(datetime.fromisoformat(timestamp).timestamp() * 1e9)
    except ValueError:
        return default_ns


def rum_items(payload: FaroPayload, received_unix_ns: int | None = None) -> list[RumItem]:
    """Flatten a payload into :class:`RumItem` values carrying the page/session/app meta."""
    now = received_unix_ns if received_unix_ns is not None else time.time_ns()
    meta = payload.meta

    def item(
        kind: RumKind,
        name: str,
        timestamp: str | None,
        trace: FaroTrace | None,
        attributes: dict[str, AttributeValue],
        *,
        message: str = "",
        values: dict[str, float] | None = None,
        frames: tuple[dict[str, AttributeValue], ...] = (),
    ) -> RumItem:
        return RumItem(
            kind=kind,
            name=name,
            time_unix_ns=_time_ns(timestamp, now),
            message=message,
            attributes=attributes,
            values=values or {},
            frames=frames,
            trace_id=trace.trace_id if trace else None,
            span_id=trace.span_id if trace else None,
            session_id=meta.session.id,
            page_url=meta.page.url,
            app_name=meta.app.name,
        )

    items: list[RumItem] = []
    for event in payload.events:
        attrs: dict[str, AttributeValue] = dict(event.attributes)
        if event.domain:
            attrs.setdefault("event.domain", event.domain)
        items.append(item("event", event.name, event.timestamp, event.trace, attrs))
    for exc in payload.exceptions:
        frames = exc.stacktrace.frames if exc.stacktrace else []
        items.append(
            item(
                "exception",
                exc.type,
                exc.timestamp,
                exc.trace,
                dict(exc.context),
                message=exc.value,
                frames=tuple(frame.model_dump(exclude_none=True) for frame in frames),
            )
        )
    for m in payload.measurements:
        vitals = [key for key in m.values if key.lower() in WEB_VITALS]
        if m.type != "web-vitals" or not vitals:
            items.append(
                item(
                    "measurement",
                    m.type,
                    m.timestamp,
                    m.trace,
                    dict(m.context),
                    values=dict(m.values),
                )
            )
            continue
        companions = {k: v for k, v in m.values.items() if k.lower() not in WEB_VITALS}
        for key in vitals:  # one item per vital, so a check or a panel can pick one
            vital_attrs: dict[str, AttributeValue] = {**m.context, "measurement.type": m.type}
            values = {key: m.values[key], **companions}
            name = WEB_VITALS[key.lower()]
            items.append(
                item("measurement", name, m.timestamp, m.trace, vital_attrs, values=values)
            )
    for log in payload.logs:
        items.append(
            item(
                "log",
                log.level,
                log.timestamp,
                log.trace,
                _json_like(log.context),
                message=log.message,
            )
        )
    return items


def _json_like(context: dict[str, Any]) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for key, value in context.items():
        if isinstance(value, str | int | float | bool) or value is None:
            out[key] = value
        else:
            out[key] = orjson.dumps(value, default=str).decode()
    return out
