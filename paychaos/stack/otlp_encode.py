"""Cheaper OTLP span and log encoders: protobuf wire bytes written directly, no message objects.

The OpenTelemetry exporter builds one protobuf object per span, attribute and
value (``encode_spans``) and then serializes them; in the payment API that
costs about as much CPU as creating the spans, on the thread that shares the
GIL with the event loop. This module writes the same ``ExportTraceServiceRequest``
bytes straight from the SDK's ``ReadableSpan`` (field by field, as the
``opentelemetry-proto`` schema numbers them), and remembers the encoding of
attribute pairs it has seen (a span's method, URL, statement, peer repeat on
every checkout). Log records likewise (``ExportLogsServiceRequest``).
``tests/api/test_otlp_encode.py`` checks that the bytes are the very bytes
``encode_spans`` / ``encode_logs`` write.

Example::

    exporter = FastOTLPSpanExporter(endpoint="http://127.0.0.1:4318/v1/traces")
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any, cast

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

_log = logging.getLogger(__name__)

_KIND = {0: 1, 1: 2, 2: 3, 3: 4, 4: 5}  # SpanKind value -> OTLP enum (INTERNAL=1 ... CONSUMER=5)
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
_PAIR_CACHE_MAX = 4096
_pack_q = struct.Struct("<Q").pack
_pack_d = struct.Struct("<d").pack
_pack_i = struct.Struct("<I").pack


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _ld(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (``tag`` is the whole first byte, field < 16)."""
    return bytes((tag,)) + _varint(len(payload)) + payload


def _str(tag: int, text: str) -> bytes:
    return _ld(tag, text.encode()) if text else b""


def _any_value(value: Any) -> bytes:
    if isinstance(value, str):
        return _ld(0x0A, value.encode())  # string_value = 1 (always written, "" included)
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"  # bool_value = 2
    if isinstance(value, int):
        return b"\x18" + _varint(value)  # int_value = 3
    if isinstance(value, float):
        return b"\x21" + _pack_d(value)  # double_value = 4
    if isinstance(value, bytes):
        return _ld(0x3A, value)  # bytes_value = 7
    if isinstance(value, Sequence):
        return _ld(0x2A, b"".join(_ld(0x0A, _any_value(v)) for v in value))  # array_value = 5
    if isinstance(value, Mapping):
        kvs = b"".join(_ld(0x0A, _key_value(str(k), v)) for k, v in value.items())
        return _ld(0x32, kvs)  # kvlist_value = 6
    raise TypeError(f"invalid attribute type {type(value).__name__}")


def _key_value(key: str, value: Any) -> bytes:
    return _str(0x0A, key) + _ld(0x12, _any_value(value))


class SpanEncoder:
    """Encodes ``ReadableSpan`` batches to ``ExportTraceServiceRequest`` bytes."""

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, type, Any], bytes] = {}
        self._headers: dict[Any, bytes] = {}

    def _attributes(self, tag: int, attributes: Mapping[str, Any] | None) -> bytes:
        if not attributes:
            return b""
        pairs = self._pairs
        parts = []
        for key, value in attributes.items():
            hashable = isinstance(value, str | int | float | bool)
            cache_key = (key, type(value), value) if hashable else None
            encoded = pairs.get(cache_key) if cache_key is not None else None
            if encoded is None:
                try:
                    encoded = _ld(tag, _key_value(key, value))
                except TypeError as exc:
                    _log.warning("attribute %s not encoded: %s", key, exc)
                    continue
                if cache_key is not None:
                    if len(pairs) >= _PAIR_CACHE_MAX:
                        pairs.clear()
                    pairs[cache_key] = encoded
            parts.append(encoded)
        return b"".join(parts)

    def span(self, span: ReadableSpan) -> bytes:
        ctx = span.get_span_context()
        assert ctx is not None
        parent = span.parent
        parts = [
            b"\x0a\x10" + ctx.trace_id.to_bytes(16, "big"),
            b"\x12\x08" + ctx.span_id.to_bytes(8, "big"),
        ]
        if ctx.trace_state:
            parts.append(_str(0x1A, ",".join(f"{k}={v}" for k, v in ctx.trace_state.items())))
        if parent is not None:
            parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
        parts.append(_str(0x2A, span.name))
        parts.append(b"\x30" + bytes((_KIND[span.kind.value],)))
        parts.append(b"\x39" + _pack_q(span.start_time or 0))
        parts.append(b"\x41" + _pack_q(span.end_time or 0))
        parts.append(self._attributes(0x4A, span.attributes))
        if span.dropped_attributes:
            parts.append(b"\x50" + _varint(span.dropped_attributes))
        for event in span.events:
            body = b"\x09" + _pack_q(event.timestamp) + _str(0x12, event.name)
            body += self._attributes(0x1A, event.attributes)
            if event.dropped_attributes:
                body += b"\x20" + _varint(event.dropped_attributes)
            parts.append(_ld(0x5A, body))
        if span.dropped_events:
            parts.append(b"\x60" + _varint(span.dropped_events))
        for link in span.links:
            flags = _HAS_IS_REMOTE | (_IS_REMOTE if link.context.is_remote else 0)
            body = (
                b"\x0a\x10"
                + link.context.trace_id.to_bytes(16, "big")
                + b"\x12\x08"
                + link.context.span_id.to_bytes(8, "big")
                + self._attributes(0x22, link.attributes)
            )
            if link.dropped_attributes:
                body += b"\x28" + _varint(link.dropped_attributes)
            parts.append(_ld(0x6A, body + b"\x35" + _pack_i(flags)))
        if span.dropped_links:
            parts.append(b"\x70" + _varint(span.dropped_links))
        status = span.status
        code = status.status_code.value
        parts.append(_ld(0x7A, _str(0x12, status.description or "") + (
            b"\x18" + bytes((code,)) if code else b""
        )))  # fmt: skip
        flags = _HAS_IS_REMOTE | (_IS_REMOTE if parent is not None and parent.is_remote else 0)
        parts.append(b"\x85\x01" + _pack_i(flags))  # flags = 16, fixed32
        return b"".join(parts)

    def _resource(self, resource: Any) -> bytes:
        cached = self._headers.get(resource)
        if cached is None:
            cached = self._attributes(0x0A, resource.attributes)
            self._headers[resource] = cached
        return cached

    def _scope(self, scope: Any) -> bytes:
        cached = self._headers.get(("scope", scope))
        if cached is None:
            cached = b""
            if scope is not None:
                cached = _str(0x0A, scope.name) + _str(0x12, scope.version or "")
                cached += self._attributes(0x1A, scope.attributes)
            self._headers[("scope", scope)] = cached
        return cached

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        return self._group(spans, self.span)

    def _group(self, items: Sequence[Any], encode_one: Any) -> bytes:
        """Resource -> scope -> items, as the exporters group them (first-seen order)."""
        grouped: dict[Any, dict[Any, list[bytes]]] = {}
        for item in items:
            scopes = grouped.setdefault(item.resource, {})
            scopes.setdefault(item.instrumentation_scope or None, []).append(encode_one(item))
        out = []
        for resource, scopes in grouped.items():
            body = [_ld(0x0A, self._resource(resource))]
            for scope, encoded in scopes.items():
                scope_body = _ld(0x0A, self._scope(scope)) + b"".join(
                    _ld(0x12, one) for one in encoded
                )
                if scope is not None and scope.schema_url:
                    scope_body += _str(0x1A, scope.schema_url)
                body.append(_ld(0x12, scope_body))
            body.append(_str(0x1A, resource.schema_url))
            out.append(_ld(0x0A, b"".join(body)))
        return b"".join(out)


class LogEncoder(SpanEncoder):
    """Encodes ``ReadableLogRecord`` batches to ``ExportLogsServiceRequest`` bytes."""

    def record(self, readable: ReadableLogRecord) -> bytes:
        rec = readable.log_record
        parts = []
        if rec.timestamp:
            parts.append(b"\x09" + _pack_q(rec.timestamp))
        severity = getattr(rec.severity_number, "value", None)
        if severity:
            parts.append(b"\x10" + _varint(severity))
        if rec.severity_text:
            parts.append(_str(0x1A, rec.severity_text))
        if rec.body is not None:
            parts.append(_ld(0x2A, _any_value(rec.body)))
        parts.append(self._attributes(0x32, rec.attributes))
        if readable.dropped_attributes:
            parts.append(b"\x38" + _varint(readable.dropped_attributes))
        flags = int(rec.trace_flags or 0)
        if flags:
            parts.append(b"\x45" + _pack_i(flags))
        if rec.trace_id:
            parts.append(b"\x4a\x10" + rec.trace_id.to_bytes(16, "big"))
        if rec.span_id:
            parts.append(b"\x52\x08" + rec.span_id.to_bytes(8, "big"))
        if rec.observed_timestamp:
            parts.append(b"\x59" + _pack_q(rec.observed_timestamp))
        if rec.event_name:
            parts.append(_str(0x62, rec.event_name))
        return b"".join(parts)

    def encode(self, batch: Sequence[Any]) -> bytes:
        return self._group(batch, self.record)


def _export(exporter: Any, data_of: Any, items: Sequence[Any], success: Any, failure: Any) -> Any:
    """The base exporters' ``export`` with ``data_of`` as the encoder (same client, retries,
    size limit and the SDK's own export metrics)."""
    if exporter._shutdown:
        _log.warning("Exporter already shutdown, ignoring batch")
        return failure
    with exporter._metrics.export_operation(len(items)) as result:
        try:
            data = data_of(items)
        except Exception as error:  # the base class's contract: never raise
            _log.error("Failed to encode batch: %s", error)
            result.error = error
            return failure
        limit = exporter._max_request_size
        if limit is not None and len(data) > limit:
            _log.warning("Dropping batch: %d bytes exceed max_request_size %d", len(data), limit)
            result.error = ValueError("batch exceeds max_request_size")
            return failure
        outcome = exporter._client.export(data)
        if not outcome.success:
            result.error = outcome.error
            result.error_attrs = (
                {"http.response.status_code": outcome.status_code}
                if outcome.status_code is not None
                else None
            )
            return failure
    return success


class FastOTLPSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` with :class:`SpanEncoder` in place of ``encode_spans``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoder = SpanEncoder()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return cast(
            SpanExportResult,
            _export(
                self,
                self._encoder.encode,
                spans,
                SpanExportResult.SUCCESS,
                SpanExportResult.FAILURE,
            ),
        )


class FastOTLPLogExporter(OTLPLogExporter):
    """``OTLPLogExporter`` with :class:`LogEncoder` in place of ``encode_logs``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoder = LogEncoder()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return cast(
            LogRecordExportResult,
            _export(
                self,
                self._encoder.encode,
                batch,
                LogRecordExportResult.SUCCESS,
                LogRecordExportResult.FAILURE,
            ),
        )
