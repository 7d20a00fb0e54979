"""HTTP client of a running collector, for checks running in another process.

Implements :class:`~paychaos.contracts.signals.TraceSource`, ``LogSource``, ``RumSource``
and ``AlertNotificationSource`` with plain ``urllib`` (sync, no dependency)::

    client = CollectorClient("http://127.0.0.1:4318")
    slow = client.find_spans(SpanQuery(service="payment-api", min_duration_ms=2000))

Transport problems and error answers raise :class:`~paychaos.contracts.errors.StackError`.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

from paychaos.contracts.errors import StackError
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

from . import wire
from .store import SignalVolume

T = TypeVar("T")


class CollectorClient:
    """Queries a collector's ``/api/*`` endpoints."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
                return orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            exc.close()
            raise StackError(f"collector answered {exc.code} for {path}: {detail}") from exc
        except (urllib.error.URLError, OSError, orjson.JSONDecodeError) as exc:
            raise StackError(f"cannot query the collector at {self.base_url}: {exc}") from exc

    def _results(
        self, path: str, params: Sequence[tuple[str, str]], decode: Callable[[dict[str, Any]], T]
    ) -> list[T]:
        return [decode(item) for item in self._get(path, params)["results"]]

    def find_spans(self, query: SpanQuery) -> list[Span]:
        return self._results("/api/spans", wire.query_to_params(query), wire.span_from_json)

    def get_trace(self, trace_id: str) -> list[Span]:
        path = "/api/traces/" + urllib.parse.quote(trace_id, safe="")
        return self._results(path, (), wire.span_from_json)

    def find_logs(self, query: LogQuery) -> list[LogRecord]:
        return self._results("/api/logs", wire.query_to_params(query), wire.log_from_json)

    def find_rum(self, query: RumQuery) -> list[RumItem]:
        return self._results("/api/rum", wire.query_to_params(query), wire.rum_from_json)

    def find_alert_notifications(self, query: AlertQuery) -> list[AlertNotification]:
        return self._results("/api/alerts", wire.query_to_params(query), wire.alert_from_json)

    def volume(
        self, since_unix_s: float | None = None, until_unix_s: float | None = None
    ) -> dict[str, SignalVolume]:
        """Items and bytes stored per signal in ``[since, until)`` (``/api/volume``)."""
        params = [
            (key, f"{value:.3f}")
            for key, value in (("since_unix_s", since_unix_s), ("until_unix_s", until_unix_s))
            if value is not None
        ]
        answer = self._get("/api/volume", params)
        try:
            return {
                name: SignalVolume(int(v["items"]), int(v["bytes"]))
                for name, v in answer["signals"].items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StackError(f"unexpected /api/volume answer from {self.base_url}") from exc

    def healthy(self) -> bool:
        """True when ``/healthz`` answers 200."""
        try:
            with urllib.request.urlopen(self.base_url + "/healthz", timeout=self.timeout_s) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False
