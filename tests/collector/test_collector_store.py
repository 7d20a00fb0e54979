"""The SQLite store and the in-memory sources answer every query the same way."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paychaos.contracts.signals import (
    AlertNotification,
    AlertNotificationSource,
    AlertQuery,
    LogQuery,
    LogRecord,
    LogSource,
    RumItem,
    RumQuery,
    RumSource,
    Span,
    SpanQuery,
    TraceSource,
    attribute_text,
)
from paychaos.stack.collector.client import CollectorClient
from paychaos.stack.collector.memory import InMemorySources
from paychaos.stack.collector.store import RetentionLimits, SqliteStore
from paychaos.stack.collector.wire import query_from_params, query_to_params

BASE_NS = 1_700_000_000_000_000_000
MS_NS = 1_000_000
SERVICES = ("api", "gateway", "db")
NAMES = ("POST /checkout", "SELECT", "charge")
METHODS = ("visa", "amex", "paypal")

attrs = st.fixed_dictionaries(
    {},
    optional={
        "method": st.sampled_from(METHODS),
        "code": st.sampled_from((200, 500)),
        "retry": st.booleans(),
    },
)

spans = st.builds(
    lambda trace, span, service, name, start, dur, status, attributes: Span(
        trace_id=f"{trace:032x}",
        span_id=f"{span:016x}",
        parent_span_id=None,
        name=name,
        service=service,
        kind="server",
        start_unix_ns=BASE_NS + start * 1_000_000,
        end_unix_ns=BASE_NS + start * 1_000_000 + dur * 1_000_000,
        status=status,
        attributes=attributes,
    ),
    st.integers(1, 3),
    st.integers(1, 2**32),
    st.sampled_from(SERVICES),
    st.sampled_from(NAMES),
    st.integers(0, 50),  # many equal start times: ties must order the same way
    st.integers(0, 40),
    st.sampled_from(("unset", "ok", "error")),
    attrs,
)

optional_ms = st.none() | st.integers(0, 40).map(float)
optional_s = st.none() | st.integers(0, 50).map(lambda ms: BASE_NS / 1e9 + ms / 1000)

span_queries = st.builds(
    SpanQuery,
    service=st.none() | st.sampled_from(SERVICES),
    name=st.none() | st.sampled_from(NAMES),
    attributes=attrs,
    min_duration_ms=optional_ms,
    max_duration_ms=optional_ms,
    since_unix_s=optional_s,
    until_unix_s=optional_s,
    status=st.none() | st.sampled_from(("unset", "ok", "error")),
    trace_id=st.none() | st.integers(1, 3).map(lambda t: f"{t:032x}"),
    limit=st.integers(1, 30),
)


@settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(spans, max_size=30), st.lists(span_queries, min_size=1, max_size=5))
def test_span_queries_agree_with_memory(stored: list[Span], queries: list[SpanQuery]) -> None:
    memory = InMemorySources()
    memory.add_spans(stored)
    with tempfile.TemporaryDirectory() as tmp, SqliteStore(Path(tmp) / "t.db") as store:
        store.add_spans(stored)
        for query in queries:
            assert store.find_spans(query) == memory.find_spans(query), query
            # and the query survives the trip through URL parameters (values as their text)
            as_text = {k: attribute_text(v) for k, v in query.attributes.items()}
            assert query_from_params(SpanQuery, query_to_params(query)) == dataclasses.replace(
                query, attributes=as_text
            )
        for trace in range(1, 4):
            assert store.get_trace(f"{trace:032x}") == memory.get_trace(f"{trace:032x}")


def make_log(i: int, level: str, service: str, method: str) -> LogRecord:
    return LogRecord(
        time_unix_ns=BASE_NS + (i // 2) * 1000,
        level=level,
        body=f"payment {i} {method} {'declined' if i % 3 else 'ok'}",
        service=service,
        trace_id=f"{i % 4:032x}" if i % 4 else None,
        attributes={"method": method, "attempt": i % 2},
    )


def test_log_rum_alert_queries_agree_with_memory(tmp_path: Path) -> None:
    logs = [
        make_log(i, ("info", "warn", "error")[i % 3], SERVICES[i % 2], METHODS[i % 3])
        for i in range(60)
    ]
    rum = [
        RumItem(
            kind=("event", "exception", "measurement")[i % 3],
            name="click_payment_button" if i % 3 == 0 else "TypeError",
            time_unix_ns=BASE_NS + i,
            attributes={"method": METHODS[i % 3]},
            values={"lcp": float(i)},
            session_id=f"s{i % 2}",
        )
        for i in range(30)
    ]
    alerts = [
        AlertNotification(
            alertname=("A", "B")[i % 2],
            status=("firing", "resolved")[i % 3 == 0],
            labels={"alertname": ("A", "B")[i % 2], "method": METHODS[i % 3]},
            annotations={},
            starts_at="",
            ends_at="",
            received_unix_ns=BASE_NS + i // 3,
            receiver="r",
        )
        for i in range(20)
    ]
    memory = InMemorySources()
    memory.add_logs(logs)
    memory.add_rum(rum)
    memory.add_alerts(alerts)
    with SqliteStore(tmp_path / "t.db") as store:
        store.add_logs(logs)
        store.add_rum(rum)
        store.add_alerts(alerts)
        log_queries = [
            LogQuery(),
            LogQuery(level="error", limit=5),
            LogQuery(service="gateway", body_contains="declined"),
            LogQuery(trace_id=f"{2:032x}"),
            LogQuery(attributes={"method": "amex", "attempt": 1}),
            LogQuery(since_unix_s=BASE_NS / 1e9 + 10e-6, until_unix_s=BASE_NS / 1e9 + 20e-6),
        ]
        for query in log_queries:
            assert store.find_logs(query) == memory.find_logs(query), query
        for rum_query in [
            RumQuery(),
            RumQuery(kind="event", name="click_payment_button"),
            RumQuery(attributes={"method": "visa"}, session_id="s0", limit=3),
            RumQuery(since_unix_s=(BASE_NS + 10) / 1e9),
        ]:
            assert store.find_rum(rum_query) == memory.find_rum(rum_query), rum_query
        for alert_query in [
            AlertQuery(),
            AlertQuery(alertname="A", status="firing"),
            AlertQuery(labels={"method": "paypal"}, receiver="r", limit=2),
        ]:
            assert store.find_alert_notifications(alert_query) == memory.find_alert_notifications(
                alert_query
            ), alert_query


def test_every_implementation_satisfies_the_protocols(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "t.db") as store:
        for source in (store, InMemorySources(), CollectorClient("http://127.0.0.1:9")):
            assert isinstance(source, TraceSource)
            assert isinstance(source, LogSource)
            assert isinstance(source, RumSource)
            assert isinstance(source, AlertNotificationSource)


def test_retention_in_process(tmp_path: Path) -> None:
    limits = RetentionLimits(max_spans=10, max_logs=3, max_rum=1, max_alerts=2)
    items = [
        Span(
            f"{1:032x}",
            f"{i + 1:016x}",
            None,
            f"s{i}",
            "api",
            "server",
            BASE_NS + i,
            BASE_NS + i + 5,
        )
        for i in range(25)
    ]
    with SqliteStore(tmp_path / "t.db", limits) as store:
        store.add_spans(items[:12])
        store.add_spans(items[12:])
        store.add_logs([make_log(i, "info", "api", "visa") for i in range(5)])
        assert store.enforce_retention() == {"spans": 15, "logs": 2, "rum": 0, "alerts": 0}
        assert store.enforce_retention() == {"spans": 0, "logs": 0, "rum": 0, "alerts": 0}
        assert [s.name for s in store.get_trace(f"{1:032x}")] == [f"s{i}" for i in range(15, 25)]
        assert store.counts()["spans"] == 10
        # attribute rows go with their spans: nothing left to match a deleted span
        store.add_spans(items[:1])
    with SqliteStore(tmp_path / "t.db", limits) as reopened:  # ids continue after reopening
        assert reopened.counts()["spans"] == 11
        assert reopened.enforce_retention()["spans"] == 1


def test_bad_queries_are_value_errors() -> None:
    with pytest.raises(ValueError, match="limit"):
        SpanQuery(limit=0)
    with pytest.raises(ValueError, match="level"):
        LogQuery(level="loud")
    with pytest.raises(ValueError, match="unknown parameter"):
        query_from_params(SpanQuery, [("colour", "blue")])
    with pytest.raises(ValueError, match="status must be one of"):
        query_from_params(SpanQuery, [("status", "broken")])


def test_common_and_rare_attribute_values_agree_with_memory(tmp_path: Path) -> None:
    # more items than the store's "rare value" threshold, so both query shapes run
    stored = [
        Span(
            f"{i // 5 + 1:032x}",
            f"{i + 1:016x}",
            None,
            NAMES[i % 3],
            SERVICES[i % 2],
            "server",
            BASE_NS + (i // 3) * MS_NS,
            BASE_NS + (i // 3) * MS_NS + (i % 7) * MS_NS,
            "error" if i % 50 == 0 else "unset",
            attributes={"method": METHODS[i % 3], "order": f"o-{i}"},
        )
        for i in range(7_000)
    ]
    memory = InMemorySources()
    memory.add_spans(stored)
    with SqliteStore(tmp_path / "t.db") as store:
        store.add_spans(stored)
        for query in [
            SpanQuery(attributes={"method": "visa"}, limit=10),
            SpanQuery(attributes={"method": "amex"}, status="error", limit=20),
            SpanQuery(attributes={"method": "paypal", "order": "o-4001"}),
            SpanQuery(attributes={"order": "o-17"}, service="gateway"),
            SpanQuery(service="api", attributes={"method": "visa"}, min_duration_ms=5, limit=50),
        ]:
            assert store.find_spans(query) == memory.find_spans(query), query


def test_a_database_from_the_previous_version_gains_exception_frames(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "v1.db"
    old = sqlite3.connect(db)
    old.executescript(
        "CREATE TABLE rum (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, "
        "time_ns INTEGER NOT NULL, message TEXT NOT NULL, attributes TEXT NOT NULL, "
        "vals TEXT NOT NULL, trace_id TEXT, span_id TEXT, session_id TEXT, page_url TEXT, "
        "app_name TEXT);"
        "INSERT INTO rum VALUES (1, 'exception', 'TypeError', 1, 'old', '{}', '{}', "
        "NULL, NULL, NULL, NULL, NULL);"
        "PRAGMA user_version=1;"
    )
    old.close()
    frame = {"filename": "https://shop.example/app.js", "function": "pay", "lineno": 3}
    with SqliteStore(db) as store:
        store.add_rum(
            [
                RumItem(
                    kind="exception",
                    name="TypeError",
                    time_unix_ns=2,
                    message="new",
                    frames=(frame,),
                )
            ]
        )
        found = store.find_rum(RumQuery(kind="exception"))
    assert [(item.message, item.frames) for item in found] == [("new", (frame,)), ("old", ())]
