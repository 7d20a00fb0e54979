"""A :class:`~paychaos.contracts.signals.LogSource` on Grafana Loki: LogQL over ``query_range``.

Logs reach Loki through Alloy's OTLP pipeline into Loki's native OTLP endpoint,
so (Loki 3 conventions) the resource attribute ``service.name`` is the stream
label ``service_name``; severity, ``trace_id``, ``span_id`` and the log
attributes are *structured metadata*, their dots turned into underscores
(``http.status_code`` → ``http_status_code``).

:func:`logql` builds a query selecting (a superset of) what a
:class:`~paychaos.contracts.signals.LogQuery` matches; the parsed records are then
filtered with ``query.matches`` (on the sanitised attribute names) so the
reference semantics hold exactly.

Example::

    loki = LokiLogSource("http://127.0.0.1:3100")
    errors = loki.find_logs(LogQuery(service="payment-api", level="error"))
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from paychaos.contracts.errors import StackError
from paychaos.contracts.signals import (
    LOG_LEVELS,
    AttributeValue,
    LogQuery,
    LogRecord,
    attribute_text,
)
from paychaos.stack.backends._http import JsonApi
from paychaos.stack.collector.otlp import level_of
from paychaos.stack.monitoring.promapi import Transport

#: The stream label carrying ``service.name`` (Loki's OTLP default).
SERVICE_LABEL = "service_name"
#: Without ``since_unix_s`` a query looks this far back.
DEFAULT_LOOKBACK_S = 3600.0

_NS_PER_S = 1_000_000_000
#: OTLP severity number ranges of each level (1-4 trace, ..., 21-24 fatal).
_SEVERITY_RANGE = {level: (4 * i + 1, 4 * i + 4) for i, level in enumerate(LOG_LEVELS)}
_RESERVED = frozenset(
    {
        "trace_id",
        "span_id",
        "severity_text",
        "severity_number",
        "detected_level",
        "level",
        "scope_name",
        "scope_version",
        "flags",
        "observed_timestamp",
    }
)


def sanitize_label(name: str) -> str:
    """A Prometheus/Loki label name for an OTLP attribute (``http.route`` → ``http_route``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return f"_{cleaned}" if cleaned[:1].isdigit() else cleaned


def logql_string(text: str) -> str:
    """A LogQL double-quoted string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def logql(query: LogQuery) -> str:
    """The LogQL log query for ``query``.

    >>> logql(LogQuery(service="payment-api", level="error", body_contains="timeout"))
    '{service_name="payment-api"} |= "timeout" | severity_number >= 17 and severity_number <= 20'
    """
    if query.service is not None:
        selector = f"{{{SERVICE_LABEL}={logql_string(query.service)}}}"
    else:
        selector = f'{{{SERVICE_LABEL}=~".+"}}'
    stages = [selector]
    if query.body_contains is not None:
        stages.append(f"|= {logql_string(query.body_contains)}")
    if query.trace_id is not None:
        stages.append(f"| trace_id={logql_string(query.trace_id.lower())}")
    if query.level is not None:
        low, high = _SEVERITY_RANGE[query.level]
        stages.append(f"| severity_number >= {low} and severity_number <= {high}")
    for key, value in sorted(query.attributes.items()):
        stages.append(f"| {sanitize_label(key)}={logql_string(attribute_text(value))}")
    return " ".join(stages)


def query_range_params(query: LogQuery, *, now_unix_s: float) -> dict[str, str]:
    """Parameters of ``GET /loki/api/v1/query_range`` (nanosecond bounds, newest first)."""
    since = (
        query.since_unix_s if query.since_unix_s is not None else now_unix_s - DEFAULT_LOOKBACK_S
    )
    until = query.until_unix_s if query.until_unix_s is not None else now_unix_s + 1
    return {
        "query": logql(query),
        "start": str(math.floor(since * _NS_PER_S)),
        "end": str(math.ceil(until * _NS_PER_S)),
        "limit": str(query.limit),
        "direction": "backward",
    }


def _metadata(entry: list[Any]) -> dict[str, str]:
    """Structured metadata of one ``values`` entry (plain or ``categorize-labels`` form)."""
    if len(entry) < 3 or not isinstance(entry[2], dict):
        return {}
    extra = entry[2]
    if "structuredMetadata" in extra or "parsed" in extra:
        merged: dict[str, str] = {}
        for part in ("structuredMetadata", "parsed"):
            merged.update({str(k): str(v) for k, v in (extra.get(part) or {}).items()})
        return merged
    return {str(k): str(v) for k, v in extra.items()}


def _level(fields: Mapping[str, str]) -> tuple[str, int, str]:
    text = fields.get("severity_text", "")
    try:
        number = int(fields.get("severity_number", "0"))
    except ValueError:
        number = 0
    if not 1 <= number <= 24 and not text:
        text = fields.get("detected_level", fields.get("level", ""))
    return level_of(number, text), number, text


def records_from_response(payload: Any) -> list[LogRecord]:
    """Log records of a ``query_range`` response of result type ``streams``."""
    if not isinstance(payload, dict) or payload.get("status") not in (None, "success"):
        raise StackError(f"Loki query failed: {payload!r:.300}")
    data = payload.get("data") or {}
    if data.get("resultType", "streams") != "streams":
        raise StackError(f"Loki answered {data.get('resultType')!r}, expected streams")
    records: list[LogRecord] = []
    for stream in data.get("result") or []:
        labels = {str(k): str(v) for k, v in (stream.get("stream") or {}).items()}
        for entry in stream.get("values") or []:
            if not isinstance(entry, list) or len(entry) < 2:
                continue
            fields = {**labels, **_metadata(entry)}
            level, number, text = _level(fields)
            attributes: dict[str, AttributeValue] = {
                key: value
                for key, value in fields.items()
                if key not in _RESERVED and key != SERVICE_LABEL
            }
            records.append(
                LogRecord(
                    time_unix_ns=int(entry[0]),
                    level=level,
                    body=str(entry[1]),
                    service=fields.get(SERVICE_LABEL, ""),
                    severity_number=number,
                    severity_text=text,
                    trace_id=fields.get("trace_id") or None,
                    span_id=fields.get("span_id") or None,
                    attributes=attributes,
                    resource_attributes={k: v for k, v in labels.items()},
                    scope=fields.get("scope_name", ""),
                )
            )
    return records


class LokiLogSource:
    """Log records from Loki's HTTP API (default port 3100)."""

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

    def find_logs(self, query: LogQuery) -> list[LogRecord]:
        params = query_range_params(query, now_unix_s=self._clock())
        records = records_from_response(self._api.get("/loki/api/v1/query_range", params))
        # the reference semantics, on the attribute names as Loki stores them
        local = replace(
            query, attributes={sanitize_label(k): v for k, v in query.attributes.items()}
        )
        found = [record for record in records if local.matches(record)]
        found.sort(key=lambda record: record.time_unix_ns, reverse=True)
        return found[: query.limit]


__all__ = [
    "SERVICE_LABEL",
    "LokiLogSource",
    "logql",
    "logql_string",
    "query_range_params",
    "records_from_response",
    "sanitize_label",
]
