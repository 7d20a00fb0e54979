"""Telemetry plumbing shared by every service of the stack.

Each service calls :func:`setup_telemetry` once at start-up. It gives:

- OpenTelemetry traces exported over OTLP/HTTP by a ``BatchSpanProcessor``:
  spans are queued in memory and sent from a background thread, so a slow or
  absent collector never blocks or breaks a request (a full queue drops spans).
- Logs as one JSON object per line on stderr, carrying ``trace_id`` and
  ``span_id`` of the active span, and the same records exported over OTLP/HTTP.
- PAN hygiene: every log message and attribute passes through
  :func:`redact_pan`, which masks any Luhn-valid 13-19 digit run.

Example::

    tel = setup_telemetry(TelemetrySettings(service_name="gateway",
                                            otlp_endpoint="http://127.0.0.1:4318"))
    tracer = tel.tracer
    ...
    tel.shutdown()
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import get_current
from opentelemetry.trace import NoOpTracerProvider, Tracer

if TYPE_CHECKING:
    # The SDK is imported where it is used: a process with telemetry off (the fault
    # proxy, OTEL_SDK_DISABLED=true) does not pay its ~3 MiB of memory.
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

# Environment variable names, as documented constants (OpenTelemetry's own names).
OTEL_EXPORTER_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTEL_SDK_DISABLED = "OTEL_SDK_DISABLED"
OTEL_TRACES_EXPORTER = "OTEL_TRACES_EXPORTER"
OTEL_LOGS_EXPORTER = "OTEL_LOGS_EXPORTER"
TELEMETRY_ENV = "PAYCHAOS_TELEMETRY"
OTLP_ENCODER_ENV = "PAYCHAOS_OTLP_ENCODER"
"""``sdk``: encode spans and logs with the SDK's own encoder (the benchmark's comparison)."""
"""``off``: the payment API runs with every kind of telemetry off (SDK, metrics, JSON logs)."""

_PAN_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def luhn_valid(digits: str) -> bool:
    """Return True when ``digits`` (only 0-9) passes the Luhn checksum."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _mask(match: re.Match[str]) -> str:
    raw = match.group(0)
    digits = raw.replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return f"[PAN REDACTED ...{digits[-4:]}]"
    return raw


def redact_pan(text: str) -> str:
    """Mask every Luhn-valid 13-19 digit run (spaces or dashes allowed) in ``text``.

    >>> redact_pan("card 4111 1111 1111 1111 declined")
    'card [PAN REDACTED ...1111] declined'
    """
    if len(text) < 13:
        return text
    return _PAN_CANDIDATE.sub(_mask, text)


def contains_pan(text: str) -> bool:
    """True when ``text`` holds something that looks like a card number (see :func:`redact_pan`)."""
    return redact_pan(text) != text


@dataclass(frozen=True)
class TelemetrySettings:
    """How a service reports itself.

    ``otlp_endpoint`` is the base URL of an OTLP/HTTP receiver (``/v1/traces``
    and ``/v1/logs`` are appended); ``None`` keeps traces and OTLP logs off.
    ``tracing`` False turns the SDK into a no-op (for the telemetry on/off benchmark);
    ``export_traces``/``export_logs`` False keep spans/log records in-process but send
    none (``OTEL_TRACES_EXPORTER=none`` / ``OTEL_LOGS_EXPORTER=none``).
    """

    service_name: str
    otlp_endpoint: str | None = None
    tracing: bool = True
    export_traces: bool = True
    export_logs: bool = True
    log_level: str = "INFO"
    export_timeout_s: float = 2.0
    max_queue_size: int = 8192
    schedule_delay_ms: int = 500
    json_logs: bool = True
    fast_encoder: bool = True
    """Encode OTLP with :mod:`paychaos.stack.otlp_encode` (the same bytes, cheaper)."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line with time, level, logger, message, trace ids, extras."""

    _skip = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
        "message",
        "asctime",
        "taskName",
    }

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "service": self.service_name,
            "logger": record.name,
            "msg": redact_pan(record.getMessage()),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            entry["trace_id"] = format(ctx.trace_id, "032x")
            entry["span_id"] = format(ctx.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in self._skip and not key.startswith("_"):
                entry[key] = _scrub(value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = redact_pan(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, separators=(",", ":"))


def _iso(created: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        + f".{int(created % 1 * 1000):03d}Z"
    )


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact_pan(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    return redact_pan(str(value))


_LEVELS = {
    logging.DEBUG: SeverityNumber.DEBUG,
    logging.INFO: SeverityNumber.INFO,
    logging.WARNING: SeverityNumber.WARN,
    logging.ERROR: SeverityNumber.ERROR,
    logging.CRITICAL: SeverityNumber.FATAL,
}


def severity_of(levelno: int) -> SeverityNumber:
    """The OTLP severity of a ``logging`` level (INFO for a level of one's own)."""
    return _LEVELS.get(levelno, SeverityNumber.INFO)


class OtlpLogHandler(logging.Handler):
    """Forwards ``logging`` records to an OpenTelemetry ``LoggerProvider``.

    The body is the (PAN-redacted) message; ``extra={...}`` fields become
    attributes; the active span's context is attached so the record carries
    ``trace_id``/``span_id``.
    """

    _skip = JsonFormatter._skip

    def __init__(self, provider: LoggerProvider, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._provider = provider

    def emit(self, record: logging.LogRecord) -> None:
        try:
            attributes: dict[str, Any] = {"logger.name": record.name}
            for key, value in record.__dict__.items():
                if key not in self._skip and not key.startswith("_"):
                    attributes[key] = _scrub(value)
            if record.exc_info and record.exc_info[1] is not None:
                attributes["exception.type"] = type(record.exc_info[1]).__name__
                attributes["exception.message"] = redact_pan(str(record.exc_info[1]))
            self._provider.get_logger(record.name).emit(
                timestamp=int(record.created * 1e9),
                context=get_current(),
                severity_number=severity_of(record.levelno),
                severity_text=record.levelname,
                body=redact_pan(record.getMessage()),
                attributes=attributes,
            )
        except Exception:  # a logging handler must never raise into the app
            self.handleError(record)


@dataclass
class Telemetry:
    """What :func:`setup_telemetry` built; ``shutdown`` flushes and stops exporters."""

    settings: TelemetrySettings
    tracer_provider: TracerProvider | NoOpTracerProvider
    logger_provider: LoggerProvider | None
    tracer: Tracer

    def shutdown(self) -> None:
        if not isinstance(self.tracer_provider, NoOpTracerProvider):
            self.tracer_provider.shutdown()
        if self.logger_provider is not None:
            self.logger_provider.shutdown()


def _resource(settings: TelemetrySettings) -> Any:
    from opentelemetry.sdk.resources import Resource

    return Resource.create({"service.name": settings.service_name})


def setup_telemetry(
    settings: TelemetrySettings,
    *,
    span_exporter: SpanExporter | None = None,
    install_global: bool = True,
    stream: Any = None,
    meter_provider: MeterProvider | None = None,
) -> Telemetry:
    """Configure traces and logs for one service process.

    ``span_exporter`` replaces the OTLP exporter (tests pass an in-memory one).
    ``meter_provider`` receives the SDK's own metrics (exported and failed spans and
    log records, queue drops) when ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true``;
    see :mod:`paychaos.stack.sdk_metrics`.
    """
    tracer_provider: TracerProvider | NoOpTracerProvider
    if not settings.tracing:
        tracer_provider = NoOpTracerProvider()
    else:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        tracer_provider = TracerProvider(resource=_resource(settings))
        exporter = span_exporter
        if exporter is None and settings.otlp_endpoint and settings.export_traces:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            from paychaos.stack.otlp_encode import FastOTLPSpanExporter

            span_class = FastOTLPSpanExporter if settings.fast_encoder else OTLPSpanExporter
            exporter = span_class(
                endpoint=settings.otlp_endpoint.rstrip("/") + "/v1/traces",
                timeout=settings.export_timeout_s,
                meter_provider=meter_provider,
            )
        if exporter is not None:
            tracer_provider.add_span_processor(
                BatchSpanProcessor(
                    exporter,
                    max_queue_size=settings.max_queue_size,
                    schedule_delay_millis=settings.schedule_delay_ms,
                    max_export_batch_size=512,
                    export_timeout_millis=int(settings.export_timeout_s * 1000),
                    meter_provider=meter_provider,
                )
            )
    if install_global:
        trace.set_tracer_provider(tracer_provider)

    root = logging.getLogger()
    root.setLevel(settings.log_level.upper())
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(stream or sys.stderr)
    if settings.json_logs:
        console.setFormatter(JsonFormatter(settings.service_name))
    root.addHandler(console)

    logger_provider: LoggerProvider | None = None
    if settings.otlp_endpoint and settings.tracing and settings.export_logs:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

        from paychaos.stack.otlp_encode import FastOTLPLogExporter

        log_class = FastOTLPLogExporter if settings.fast_encoder else OTLPLogExporter

        logger_provider = LoggerProvider(resource=_resource(settings))
        logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(
                log_class(
                    endpoint=settings.otlp_endpoint.rstrip("/") + "/v1/logs",
                    timeout=settings.export_timeout_s,
                    meter_provider=meter_provider,
                ),
                max_queue_size=settings.max_queue_size,
                schedule_delay_millis=settings.schedule_delay_ms,
                meter_provider=meter_provider,
            )
        )
        root.addHandler(OtlpLogHandler(logger_provider))
    # Library chatter (the exporters' own retry warnings) must not recurse into OTLP.
    for noisy in ("opentelemetry", "urllib3", "uvicorn.access"):
        logging.getLogger(noisy).propagate = noisy != "opentelemetry"
    logging.getLogger("opentelemetry").addHandler(console)

    tracer = tracer_provider.get_tracer(settings.service_name)
    return Telemetry(settings, tracer_provider, logger_provider, tracer)


def settings_from_env(
    service_name: str, environ: Mapping[str, str], **overrides: Any
) -> TelemetrySettings:
    """Build settings from OpenTelemetry's own variables.

    ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SDK_DISABLED``, and
    ``OTEL_TRACES_EXPORTER`` / ``OTEL_LOGS_EXPORTER`` (``otlp`` or ``none``).
    """
    endpoint = environ.get(OTEL_EXPORTER_OTLP_ENDPOINT) or None
    tracing = environ.get(OTEL_SDK_DISABLED, "false").lower() != "true"
    values: dict[str, Any] = {
        "otlp_endpoint": endpoint,
        "tracing": tracing,
        "export_traces": environ.get(OTEL_TRACES_EXPORTER, "otlp").lower() != "none",
        "export_logs": environ.get(OTEL_LOGS_EXPORTER, "otlp").lower() != "none",
        "fast_encoder": environ.get(OTLP_ENCODER_ENV, "fast").strip().lower() != "sdk",
    }
    values.update(overrides)
    return TelemetrySettings(service_name=service_name, **values)
