"""A :class:`~paychaos.contracts.signals.TraceSource` on Grafana Tempo: TraceQL search, then traces by id.

Two steps, so that every backend keeps the reference semantics of
:meth:`SpanQuery.matches <paychaos.contracts.signals.SpanQuery.matches>`:

1. :func:`traceql` turns the query into a TraceQL span filter and
   ``GET /api/search?q=...&start=...&end=...&limit=...&spss=...`` narrows the
   search to matching traces (and their matching span ids);
2. each of those traces is fetched whole (``GET /api/traces/<id>``, OTLP JSON
   with ``batches`` or ``resourceSpans``) and its spans are filtered with
   ``query.matches`` — the final word.

Example::

    tempo = TempoTraceSource("http://127.0.0.1:3200")
    slow = tempo.find_spans(SpanQuery(service="payment-api", min_duration_ms=2000))
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import time
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from paychaos.contracts.errors import StackError
from paychaos.contracts.signals import AttributeValue, Span, SpanQuery
from paychaos.stack.backends._http import JsonApi
from paychaos.stack.collector.otlp import spans_from_request
from paychaos.stack.monitoring.promapi import Transport

#: Without ``since_unix_s`` a search looks this far back (Tempo needs a window
#: to search its blocks and not only the ingesters).
DEFAULT_LOOKBACK_S = 3600.0
#: Spans per span set Tempo returns in a search result (its default is 3).
SPANS_PER_SPANSET = 100

_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_KIND_TRACEQL = {
    "unspecified": "unspecified",
    "internal": "internal",
    "server": "server",
    "client": "client",
    "producer": "producer",
    "consumer": "consumer",
}


# ----------------------------------------------------------------- query builder


def traceql_string(text: str) -> str:
    """A TraceQL string literal: double quotes, backslash and quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _duration(ms: float) -> str:
    """A TraceQL duration; whole microseconds keep it exact (``1500.5ms`` → ``1500500us``)."""
    micros = ms * 1000
    if micros == math.floor(micros) and micros % 1000 == 0:
        return f"{int(micros // 1000)}ms"
    return f"{math.floor(micros)}us"


def _attribute_condition(key: str, value: AttributeValue) -> str | None:
    """``span.<key> = <value>``; None when TraceQL cannot express it (lists, maps, null)."""
    field = f"span.{key}" if re.match(r"^[A-Za-z_][A-Za-z0-9_.\-]*$", key) else None
    if field is None:
        return None
    if isinstance(value, bool):
        return f"{field} = {'true' if value else 'false'}"
    if isinstance(value, int | float):
        return f"({field} = {value!r} || {field} = {traceql_string(repr(value))})"
    if isinstance(value, str):
        if _NUMBER.match(value):  # "500" matches 500 in the reference semantics
            return f"({field} = {traceql_string(value)} || {field} = {value})"
        return f"{field} = {traceql_string(value)}"
    return None


def traceql(query: SpanQuery) -> str:
    """The TraceQL span filter selecting (a superset of) the spans ``query`` matches.

    >>> traceql(SpanQuery(service="payment-api", status="error", min_duration_ms=2000))
    '{ resource.service.name = "payment-api" && status = error && duration >= 2000ms }'
    """
    conditions: list[str] = []
    if query.service is not None:
        conditions.append(f"resource.service.name = {traceql_string(query.service)}")
    if query.name is not None:
        conditions.append(f"name = {traceql_string(query.name)}")
    if query.status is not None:
        conditions.append(f"status = {query.status}")
    if query.kind is not None:
        conditions.append(f"kind = {_KIND_TRACEQL[query.kind]}")
    if query.min_duration_ms is not None:
        conditions.append(f"duration >= {_duration(query.min_duration_ms)}")
    if query.max_duration_ms is not None:
        conditions.append(f"duration <= {_duration(query.max_duration_ms)}")
    for key, value in sorted(query.attributes.items()):
        condition = _attribute_condition(key, value)
        if condition is not None:
            conditions.append(condition)
    return "{ " + " && ".join(conditions) + " }" if conditions else "{ }"


def search_params(query: SpanQuery, *, now_unix_s: float) -> dict[str, str]:
    """Parameters of ``GET /api/search`` for ``query`` (start/end in whole unix seconds)."""
    since = (
        query.since_unix_s if query.since_unix_s is not None else now_unix_s - DEFAULT_LOOKBACK_S
    )
    until = query.until_unix_s if query.until_unix_s is not None else now_unix_s + 1
    return {
        "q": traceql(query),
        "start": str(math.floor(since)),
        "end": str(max(math.ceil(until), math.floor(since) + 1)),
        "limit": str(query.limit),
        "spss": str(min(query.limit, SPANS_PER_SPANSET)),
    }


# ------------------------------------------------------------------ parsers


def trace_ids_from_search(payload: Any) -> list[str]:
    """Trace ids (lowercase hex, 32 chars) of a search response, in response order.

    Tempo drops leading zeros of ids in search results; they are padded back.
    """
    if not isinstance(payload, dict):
        raise StackError("Tempo search response is not an object")
    ids: list[str] = []
    for trace in payload.get("traces") or []:
        raw = str(trace.get("traceID", "")).lower()
        if raw and _HEX.match(raw) and len(raw) <= 32:
            ids.append(raw.rjust(32, "0"))
    return ids


def _normalise_ids(node: Any) -> Any:
    """Ids as protobuf JSON wants them (base64), whether Tempo sent hex or base64."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                if value and _HEX.match(value) and len(value) in (16, 32):
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
            else:
                _normalise_ids(value)
    elif isinstance(node, list):
        for item in node:
            _normalise_ids(item)
    return node


def spans_from_trace(payload: Any) -> list[Span]:
    """Spans of a ``/api/traces/<id>`` body (v1 ``batches``, v2 ``trace.resourceSpans``)."""
    if payload is None:
        return []
    if not isinstance(payload, dict):
        raise StackError("Tempo trace response is not an object")
    document = payload.get("trace", payload)
    resource_spans = document.get("batches") or document.get("resourceSpans") or []
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(
            _normalise_ids({"resourceSpans": resource_spans}), request, ignore_unknown_fields=True
        )
    except (json_format.ParseError, binascii.Error, ValueError) as exc:
        raise StackError(f"Tempo trace response is not OTLP JSON: {exc}") from exc
    return spans_from_request(request).items


# ------------------------------------------------------------------ the source


class TempoTraceSource:
    """Spans and traces from Tempo's HTTP API (query-frontend, default port 3200)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = JsonApi(base_url, timeout_s=timeout_s, transport=transport)
        self._clock = clock

    def find_spans(self, query: SpanQuery) -> list[Span]:
        if query.trace_id is not None:
            candidates = self.get_trace(query.trace_id)
        else:
            params = search_params(query, now_unix_s=self._clock())
            ids = trace_ids_from_search(self._api.get("/api/search", params))
            candidates = [span for trace_id in ids for span in self.get_trace(trace_id)]
        found = [span for span in candidates if query.matches(span)]
        found.sort(key=lambda span: span.start_unix_ns, reverse=True)
        return found[: query.limit]

    def get_trace(self, trace_id: str) -> list[Span]:
        wanted = trace_id.lower()
        if not _HEX.match(wanted) or len(wanted) > 32:
            return []
        payload = self._api.get(f"/api/traces/{wanted.rjust(32, '0')}", missing_ok=True)
        spans = spans_from_trace(payload)
        spans.sort(key=lambda span: span.start_unix_ns)
        return spans

    def ready(self) -> bool:
        """True when Tempo answers ``/ready``."""
        try:
            self._api.get("/ready")
        except StackError as exc:
            return "not JSON" in str(exc)  # /ready answers plain text "ready"
        return True


__all__ = [
    "DEFAULT_LOOKBACK_S",
    "TempoTraceSource",
    "search_params",
    "spans_from_trace",
    "trace_ids_from_search",
    "traceql",
    "traceql_string",
]
