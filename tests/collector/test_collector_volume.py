"""The store's volume per signal and time window (what ``paychaos budget`` divides)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from collector_harness import RunningCollector

from paychaos.contracts.signals import LogRecord, RumItem, Span
from paychaos.stack.collector.client import CollectorClient
from paychaos.stack.collector.store import SignalVolume, SqliteStore

T0 = 1_700_000_000  # unix seconds
NS = 1_000_000_000


def _span(i: int, at_s: float, **attributes: str) -> Span:
    start = int(at_s * NS)
    return Span(
        trace_id=f"{i:032x}",
        span_id=f"{i:016x}",
        parent_span_id=None,
        name="POST /api/checkout",
        service="payment-api",
        kind="server",
        start_unix_ns=start,
        end_unix_ns=start + 5_000_000,
        status="ok",
        attributes=attributes,
    )


def _log(at_s: float, body: str) -> LogRecord:
    return LogRecord(time_unix_ns=int(at_s * NS), level="info", body=body, service="payment-api")


def _span_bytes(span: Span) -> int:
    """The documented measure, recomputed: text fields as UTF-8 + 8 bytes per number."""
    texts = [
        span.trace_id, span.span_id, span.parent_span_id or "", span.name, span.service,
        span.kind, span.status, span.status_message,
        orjson.dumps(span.attributes).decode(), orjson.dumps(span.resource_attributes).decode(),
        span.scope, "[]",
    ]  # fmt: skip
    return sum(len(t.encode()) for t in texts) + 16


def _log_bytes(r: LogRecord) -> int:
    texts = [r.level, r.body, r.service, r.severity_text, "{}", "{}", r.scope]
    return sum(len(t.encode()) for t in texts) + 16


def test_volume_counts_items_and_bytes_in_the_window(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "t.db") as store:
        inside = [_span(1, T0 + 1, method="visa"), _span(2, T0 + 9.5, method="amex")]
        outside = [_span(3, T0 - 1), _span(4, T0 + 10)]  # before, and at `until` (excluded)
        store.add_spans([*inside, *outside])
        logs = [_log(T0 + 2, "payment accepted"), _log(T0 + 3, "paiement refusé ✗")]
        store.add_logs([*logs, _log(T0 + 20, "later")])
        store.add_rum(
            [RumItem(kind="event", name="click", time_unix_ns=(T0 + 4) * NS, message="pay")]
        )
        volume = store.volume(T0, T0 + 10)
        assert volume["spans"] == SignalVolume(2, sum(_span_bytes(s) for s in inside))
        assert volume["logs"] == SignalVolume(2, sum(_log_bytes(r) for r in logs))
        assert volume["rum"].items == 1 and volume["rum"].bytes > len("eventclickpay")
        everything = store.volume()
        assert (everything["spans"].items, everything["logs"].items) == (4, 3)
        assert store.volume(T0 + 100, T0 + 200)["spans"] == SignalVolume(0, 0)


def test_volume_over_http(collector: RunningCollector) -> None:
    client = CollectorClient(collector.base_url)
    assert client.volume(T0, T0 + 10) == {
        "spans": SignalVolume(0, 0),
        "logs": SignalVolume(0, 0),
        "rum": SignalVolume(0, 0),
    }
    assert client.volume()["logs"] == SignalVolume(0, 0)
    for query, said in (("since_unix_s=yesterday", "unix time"), ("what=1", "unknown")):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{collector.base_url}/api/volume?{query}", timeout=5)
        with caught.value as answer:
            assert answer.code == 400
            assert said in answer.read().decode()
