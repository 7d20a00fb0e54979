"""OTLP/HTTP wire formats: decode export requests, encode export responses.

Decoding uses the official ``opentelemetry-proto`` messages. For OTLP JSON the
protobuf JSON mapping is used with the two OTLP deviations applied first:
trace and span ids are hex strings (protobuf JSON would expect base64), and
unknown fields are ignored. Enum values may be names or integers, 64-bit
integers strings or numbers, keys lowerCamelCase or original names.

Spans and log records with unusable ids are refused individually and reported
as a partial success (``rejected_spans`` / ``rejected_log_records``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from paychaos.contracts.messages import json_error
from paychaos.contracts.signals import (
    AttributeValue,
    LogRecord,
    Span,
    SpanEvent,
    SpanKind,
    SpanStatus,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
_KINDS: tuple[SpanKind, ...] = (
    "unspecified",
    "internal",
    "server",
    "client",
    "producer",
    "consumer",
)
_STATUSES: tuple[SpanStatus, ...] = ("unset", "ok", "error")
_LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")
T = TypeVar("T")
_ZERO_TRACE = b"\x00" * 16
_ZERO_SPAN = b"\x00" * 8


class MalformedPayload(ValueError):
    """The body is not a valid message of the expected type (answered with 400)."""


def _what(message: Message) -> str:
    if isinstance(message, ExportTraceServiceRequest):
        return "an OTLP trace export"
    if isinstance(message, ExportLogsServiceRequest):
        return "an OTLP log export"
    return "an OTLP export"


def _mapping_error(exc: Exception) -> str:
    """``resourceSpans.scopeSpans.spans.startTimeUnixNano: must be an integer`` from
    protobuf's JSON mapping error (whose own words name Python and protobuf internals)."""
    text = str(exc)
    path = ".".join(re.findall(r"Failed to parse (\w+) field", text)) or "(body)"
    tail = text.rsplit("field: ", 1)[-1]
    if "repeated field" in tail or "must be in []" in tail:
        reason = "must be a JSON array"
    elif "int()" in tail or "integer" in tail.lower():
        reason = "must be an integer"
    elif "float" in tail.lower() or "number" in tail.lower():
        reason = "must be a number"
    elif "enum" in tail.lower():
        reason = "is not a known value"
    elif "not iterable" in tail or "must be in a {}" in tail or "not a JSON object" in tail:
        reason = "must be a JSON object"
    elif "bool" in tail.lower():
        reason = "must be true or false"
    elif "base64" in tail.lower() or "bytes" in tail.lower():
        reason = "is not a valid id"
    else:
        reason = "has a value of the wrong type"
    return f"{path}: {reason}"


def parse_json_document(document: dict[str, Any], message: Message) -> None:
    """Fill ``message`` from a decoded OTLP JSON object; raise :class:`MalformedPayload`."""
    try:
        json_format.ParseDict(hex_ids_to_base64(document), message, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedPayload(f"not {_what(message)}: {_mapping_error(exc)}") from None
    except RecursionError:
        raise MalformedPayload(f"not {_what(message)}: nested too deeply") from None


def parse_request(body: bytes, content_type: str, message: Message) -> None:
    """Fill ``message`` from ``body`` in ``content_type``; raise :class:`MalformedPayload`
    with a sentence that names what is wrong (a JSON error by line and column)."""
    if content_type == PROTOBUF:
        try:
            message.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError):
            raise MalformedPayload(f"the body is not {_what(message)} in protobuf") from None
        return
    try:
        document = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError as exc:
        raise MalformedPayload(f"the body is not JSON: {json_error(exc)}") from None
    if not isinstance(document, dict):
        raise MalformedPayload("an OTLP JSON body must be an object")
    parse_json_document(document, message)


def hex_ids_to_base64(node: Any) -> Any:
    """Rewrite OTLP JSON hex ids to the base64 protobuf JSON expects (in place, recursively).

    An id that is not valid hex becomes empty, so the span is refused with a
    partial success instead of failing the whole request.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    node[key] = ""
            else:
                hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            hex_ids_to_base64(item)
    return node


def encode_response(message: Message, content_type: str) -> bytes:
    if content_type == PROTOBUF:
        return bytes(message.SerializeToString())
    return json_format.MessageToJson(message, indent=None).encode()


def any_value(value: AnyValue) -> AttributeValue:
    """Convert an OTLP ``AnyValue`` to a JSON-like Python value (bytes become hex)."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return value.bytes_value.hex()
    return None


def attributes(pairs: Iterable[KeyValue]) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for pair in pairs:
        which = pair.value.WhichOneof("value")
        if which == "string_value":  # fast path: most attributes are strings
            out[pair.key] = pair.value.string_value
        else:
            out[pair.key] = any_value(pair.value)
    return out


@dataclass(frozen=True)
class Decoded(Generic[T]):
    """What a request yielded: the items kept, how many were refused and why."""

    items: list[T]
    rejected: int
    error_message: str


def spans_from_request(request: ExportTraceServiceRequest) -> Decoded[Span]:
    """Flatten an export request into :class:`Span` values, refusing bad ids and times."""
    spans: list[Span] = []
    rejected = 0
    reasons: set[str] = set()
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name", "unknown_service"))
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                trace_id = span.trace_id
                span_id = span.span_id
                if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
                    rejected += 1
                    reasons.add("invalid trace id")
                    continue
                if len(span_id) != 8 or span_id == _ZERO_SPAN:
                    rejected += 1
                    reasons.add("invalid span id")
                    continue
                parent = span.parent_span_id
                if parent and len(parent) != 8:
                    rejected += 1
                    reasons.add("invalid parent span id")
                    continue
                if span.end_time_unix_nano < span.start_time_unix_nano:
                    rejected += 1
                    reasons.add("end time before start time")
                    continue
                kind = span.kind if 0 <= span.kind < len(_KINDS) else 0
                code = span.status.code if 0 <= span.status.code < len(_STATUSES) else 0
                spans.append(
                    Span(
                        trace_id=trace_id.hex(),
                        span_id=span_id.hex(),
                        parent_span_id=parent.hex() if parent and parent != _ZERO_SPAN else None,
                        name=span.name,
                        service=service,
                        kind=_KINDS[kind],
                        start_unix_ns=span.start_time_unix_nano,
                        end_unix_ns=span.end_time_unix_nano,
                        status=_STATUSES[code],
                        status_message=span.status.message,
                        attributes=attributes(span.attributes),
                        resource_attributes=resource,
                        scope=scope,
                        events=tuple(
                            SpanEvent(e.name, e.time_unix_nano, attributes(e.attributes))
                            for e in span.events
                        ),
                    )
                )
    return Decoded(spans, rejected, "; ".join(sorted(reasons)))


def level_of(severity_number: int, severity_text: str) -> str:
    """Map an OTLP severity number (1-24) to a level name, falling back to the text."""
    if 1 <= severity_number <= 24:
        return _LEVELS[(severity_number - 1) // 4]
    text = severity_text.strip().lower()
    aliases = {"warning": "warn", "critical": "fatal", "err": "error"}
    text = aliases.get(text, text)
    return text if text in _LEVELS else "info"


def _body_text(value: AnyValue) -> str:
    if value.WhichOneof("value") == "string_value":
        return value.string_value
    converted = any_value(value)
    return "" if converted is None else orjson.dumps(converted).decode()


def logs_from_request(
    request: ExportLogsServiceRequest, received_unix_ns: int
) -> Decoded[LogRecord]:
    """Flatten an export request into :class:`LogRecord` values, refusing bad ids."""
    records: list[LogRecord] = []
    rejected = 0
    reasons: set[str] = set()
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        service = str(resource.get("service.name", "unknown_service"))
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope.name
            for record in scope_logs.log_records:
                trace_id = record.trace_id
                span_id = record.span_id
                if trace_id and len(trace_id) != 16:
                    rejected += 1
                    reasons.add("invalid trace id")
                    continue
                if span_id and len(span_id) != 8:
                    rejected += 1
                    reasons.add("invalid span id")
                    continue
                time_ns = record.time_unix_nano or record.observed_time_unix_nano
                records.append(
                    LogRecord(
                        time_unix_ns=time_ns or received_unix_ns,
                        level=level_of(record.severity_number, record.severity_text),
                        body=_body_text(record.body),
                        service=service,
                        severity_number=record.severity_number,
                        severity_text=record.severity_text,
                        trace_id=trace_id.hex() if trace_id and trace_id != _ZERO_TRACE else None,
                        span_id=span_id.hex() if span_id and span_id != _ZERO_SPAN else None,
                        attributes=attributes(record.attributes),
                        resource_attributes=resource,
                        scope=scope,
                    )
                )
    return Decoded(records, rejected, "; ".join(sorted(reasons)))


def trace_response(rejected: int, error_message: str) -> ExportTraceServiceResponse:
    response = ExportTraceServiceResponse()
    if rejected or error_message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = error_message
    return response


def logs_response(rejected: int, error_message: str) -> ExportLogsServiceResponse:
    response = ExportLogsServiceResponse()
    if rejected or error_message:
        response.partial_success.rejected_log_records = rejected
        response.partial_success.error_message = error_message
    return response


__all__ = [
    "JSON",
    "PROTOBUF",
    "Decoded",
    "ExportLogsServiceRequest",
    "ExportTraceServiceRequest",
    "MalformedPayload",
    "encode_response",
    "hex_ids_to_base64",
    "level_of",
    "logs_from_request",
    "logs_response",
    "parse_request",
    "spans_from_request",
    "trace_response",
]
