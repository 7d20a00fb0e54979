"""The collector's storage: one embedded SQLite database for spans, logs, RUM and alerts.

Why SQLite (stdlib ``sqlite3``), and why this way:

- **No server to run**: the embedded stack must work on a fresh machine; one file
  holds everything, a test gets its own file in ``tmp_path``.
- **WAL journal**: readers (queries over HTTP, checks) never block the writer
  and the writer never blocks them; each commit is one sequential append.
- **synchronous=NORMAL** in WAL mode: a committed transaction survives a crash
  or kill of the *process* (the WAL is in the OS page cache, fsynced at
  checkpoint); only a power loss or kernel crash can lose the last commits.
  Every receiver commits its batch *before* answering 200, so what was
  acknowledged is never lost to a collector crash.
- **One writer thread** (a single-worker executor owning the only write
  connection): SQLite allows one writer at a time anyway, and keeping it off
  the event loop keeps the receivers responsive. A batch is one transaction of
  ``executemany`` inserts. Readers use their own per-thread connections.
- **Indexes for the queries**: spans by trace id; by (service, name, start),
  by (name, start), by start and by duration; logs by (service, level, time),
  (level, time), time and trace id; RUM by (kind, name, time); alerts by
  (alertname, status, time). Attribute equality uses a side table per signal
  ``(item, key, value)`` indexed on ``(key, value, item)``, so "spans with
  ``payment.method = amex``" is an index lookup, not a JSON scan.
- **Bounded size**: row ids grow monotonically; :meth:`SqliteStore.enforce_retention`
  deletes the oldest rows (lowest ids) beyond ``max_spans`` / ``max_logs`` /
  ``max_rum`` / ``max_alerts``, in chunks so the writer never stalls for long.

Example::

    store = SqliteStore(tmp_path / "telemetry.db")
    store.add_spans(spans)
    slow = store.find_spans(SpanQuery(service="payment-api", min_duration_ms=2000))
    store.close()
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from paychaos.contracts.errors import StackError
from paychaos.contracts.signals import (
    AlertNotification,
    AlertQuery,
    AttributeValue,
    LogQuery,
    LogRecord,
    RumItem,
    RumQuery,
    Span,
    SpanEvent,
    SpanQuery,
    attribute_text,
)

from .sql import (
    ATTR_TABLES,
    SCHEMA,
    SCHEMA_VERSION,
    VOLUME_COLUMNS,
    Where,
    attr_schema,
    migrate,
    volume_sql,
)

R = TypeVar("R")

_RETENTION_CHUNK_ROWS = 20_000


@dataclass(frozen=True)
class RetentionLimits:
    """How many items of each signal the store keeps (oldest deleted first)."""

    max_spans: int = 5_000_000
    max_logs: int = 2_000_000
    max_rum: int = 500_000
    max_alerts: int = 100_000

    def __post_init__(self) -> None:
        for name in ("max_spans", "max_logs", "max_rum", "max_alerts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class SignalVolume:
    """How many items of one signal were stored in a time window, and their bytes.

    Bytes are the item as stored: its text fields (body, attributes and resource
    attributes as JSON, names, ids) as UTF-8, plus 8 bytes per number.
    """

    items: int
    bytes: int


_FOREVER_NS = 2**63 - 1


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


class SqliteStore:
    """Spans, logs, RUM items and alert notifications in one SQLite file.

    Implements :class:`~paychaos.contracts.signals.TraceSource`, ``LogSource``,
    ``RumSource`` and ``AlertNotificationSource``. Thread-safe: writes go
    through the single writer thread, reads use per-thread connections.
    """

    def __init__(self, path: str | Path, limits: RetentionLimits | None = None) -> None:
        self.path = Path(path)
        self.limits = limits or RetentionLimits()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._writer_thread: threading.Thread | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._next_id: dict[str, int] = {}
        self._closed = False
        try:
            self._writer.submit(self._open_writer).result()
        except sqlite3.Error as exc:
            self._writer.shutdown(wait=True)
            raise StackError(f"cannot open telemetry database {self.path}: {exc}") from exc

    # ------------------------------------------------------------------ plumbing

    def _open_writer(self) -> None:
        self._writer_thread = threading.current_thread()
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA busy_timeout=5000")
        script = SCHEMA + "".join(attr_schema(t) for t in ATTR_TABLES.values())
        conn.executescript(f"BEGIN; {script}")
        try:
            migrate(conn)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except sqlite3.Error:
            conn.execute("ROLLBACK")
            raise
        for table in ATTR_TABLES:
            row = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()
            self._next_id[table] = int(row[0]) + 1
        self._write_conn = conn

    def submit(self, fn: Callable[[], R]) -> Future[R]:
        """Run ``fn`` on the writer thread (where ``add_*`` write directly)."""
        if self._closed:
            raise StackError("the telemetry store is closed")
        return self._writer.submit(fn)

    def _on_writer(self, fn: Callable[[], R]) -> R:
        if threading.current_thread() is self._writer_thread:
            return fn()
        return self.submit(fn).result()

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StackError("the telemetry store is closed")
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA query_only=1")
            conn.execute("PRAGMA cache_size=-32768")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StackError(f"telemetry query failed: {exc}") from exc

    def _insert(
        self,
        table: str,
        sql: str,
        rows: list[tuple[Any, ...]],
        attrs: list[Mapping[str, AttributeValue]],
    ) -> int:
        """Insert rows (without their id) and their attributes in one transaction."""
        if not rows:
            return 0
        conn = self._write_conn
        assert conn is not None
        first = self._next_id[table]
        attr_rows = [
            (first + offset, key, attribute_text(value))
            for offset, mapping in enumerate(attrs)
            for key, value in mapping.items()
        ]
        try:
            conn.execute("BEGIN")
            conn.executemany(sql, [(first + i, *row) for i, row in enumerate(rows)])
            if attr_rows:
                conn.executemany(
                    f"INSERT OR REPLACE INTO {ATTR_TABLES[table]} VALUES (?, ?, ?)", attr_rows
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StackError(f"cannot store {table}: {exc}") from exc
        self._next_id[table] = first + len(rows)
        return len(rows)

    # -------------------------------------------------------------------- writes

    def add_spans(self, spans: Sequence[Span]) -> int:
        """Store spans (one transaction, committed before returning); returns how many."""
        rows = [
            (
                s.trace_id,
                s.span_id,
                s.parent_span_id,
                s.name,
                s.service,
                s.kind,
                s.start_unix_ns,
                s.end_unix_ns,
                s.end_unix_ns - s.start_unix_ns,
                s.status,
                s.status_message,
                _dumps(s.attributes),
                _dumps(s.resource_attributes),
                s.scope,
                _dumps([(e.name, e.time_unix_ns, e.attributes) for e in s.events]),
            )
            for s in spans
        ]
        sql = "INSERT INTO spans VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        return self._on_writer(
            lambda: self._insert("spans", sql, rows, [s.attributes for s in spans])
        )

    def add_logs(self, records: Sequence[LogRecord]) -> int:
        rows = [
            (
                r.time_unix_ns,
                r.level,
                r.body,
                r.service,
                r.severity_number,
                r.severity_text,
                r.trace_id,
                r.span_id,
                _dumps(r.attributes),
                _dumps(r.resource_attributes),
                r.scope,
            )
            for r in records
        ]
        sql = "INSERT INTO logs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
        return self._on_writer(
            lambda: self._insert("logs", sql, rows, [r.attributes for r in records])
        )

    def add_rum(self, items: Sequence[RumItem]) -> int:
        rows = [
            (
                i.kind,
                i.name,
                i.time_unix_ns,
                i.message,
                _dumps(i.attributes),
                _dumps(i.values),
                i.trace_id,
                i.span_id,
                i.session_id,
                i.page_url,
                i.app_name,
                _dumps(i.frames),
            )
            for i in items
        ]
        sql = "INSERT INTO rum VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
        return self._on_writer(
            lambda: self._insert("rum", sql, rows, [i.attributes for i in items])
        )

    def add_alerts(self, alerts: Sequence[AlertNotification]) -> int:
        rows = [
            (
                a.alertname,
                a.status,
                _dumps(a.labels),
                _dumps(a.annotations),
                a.starts_at,
                a.ends_at,
                a.received_unix_ns,
                a.receiver,
                a.group_key,
                a.notification_status,
                a.generator_url,
                a.fingerprint,
            )
            for a in alerts
        ]
        sql = "INSERT INTO alerts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
        return self._on_writer(
            lambda: self._insert("alerts", sql, rows, [a.labels for a in alerts])
        )

    def enforce_retention(self) -> dict[str, int]:
        """Delete the oldest items beyond the limits; returns how many per table."""
        return self._on_writer(self._enforce_retention)

    def _enforce_retention(self) -> dict[str, int]:
        conn = self._write_conn
        assert conn is not None
        limits = {
            "spans": self.limits.max_spans,
            "logs": self.limits.max_logs,
            "rum": self.limits.max_rum,
            "alerts": self.limits.max_alerts,
        }
        dropped: dict[str, int] = {}
        for table, limit in limits.items():
            cutoff = self._next_id[table] - limit  # ids below this are beyond the limit
            removed = 0
            while True:
                row = conn.execute(f"SELECT min(id) FROM {table}").fetchone()
                if row[0] is None or row[0] >= cutoff:
                    break
                upto = min(cutoff, int(row[0]) + _RETENTION_CHUNK_ROWS)
                try:
                    conn.execute("BEGIN")
                    conn.execute(f"DELETE FROM {ATTR_TABLES[table]} WHERE item < ?", (upto,))
                    removed += conn.execute(f"DELETE FROM {table} WHERE id < ?", (upto,)).rowcount
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise StackError(f"retention of {table} failed: {exc}") from exc
            dropped[table] = removed
        return dropped

    def counts(self) -> dict[str, int]:
        """How many items of each signal are stored."""
        return {
            table: int(self._query(f"SELECT count(*) FROM {table}", ())[0][0])
            for table in ATTR_TABLES
        }

    def volume(
        self, since_unix_s: float | None = None, until_unix_s: float | None = None
    ) -> dict[str, SignalVolume]:
        """Items and bytes stored per signal (``spans``, ``logs``, ``rum``) whose time
        (a span's start) is in ``[since, until)``; no bound means from the first or to
        the last item. The budget divides these by the checkouts of the same window."""
        since = int(since_unix_s * 1e9) if since_unix_s is not None else -_FOREVER_NS
        until = int(until_unix_s * 1e9) if until_unix_s is not None else _FOREVER_NS
        out = {}
        for table in VOLUME_COLUMNS:
            items, size = self._query(volume_sql(table), (since, until))[0]
            out[table] = SignalVolume(int(items), int(size))
        return out

    def close(self) -> None:
        """Finish pending writes, checkpoint the WAL and close every connection."""
        if self._closed:
            return
        self._closed = True

        def shutdown_writer() -> None:
            if self._write_conn is not None:
                self._write_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._write_conn.close()

        self._writer.submit(shutdown_writer).result()
        self._writer.shutdown(wait=True)
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --------------------------------------------------------------------- reads

    _SPAN_COLUMNS = (
        "trace_id, span_id, parent_span_id, name, service, kind, start_ns, end_ns, status, "
        "status_message, attributes, resource, scope, events"
    )

    @staticmethod
    def _span(row: tuple[Any, ...]) -> Span:
        return Span(
            trace_id=row[0],
            span_id=row[1],
            parent_span_id=row[2],
            name=row[3],
            service=row[4],
            kind=row[5],
            start_unix_ns=row[6],
            end_unix_ns=row[7],
            status=row[8],
            status_message=row[9],
            attributes=orjson.loads(row[10]),
            resource_attributes=orjson.loads(row[11]),
            scope=row[12],
            events=tuple(SpanEvent(n, t, a) for n, t, a in orjson.loads(row[13])),
        )

    def find_spans(self, query: SpanQuery) -> list[Span]:
        where = Where()
        where.eq("service", query.service)
        where.eq("name", query.name)
        where.eq("status", query.status)
        where.eq("kind", query.kind)
        where.eq("trace_id", query.trace_id.lower() if query.trace_id else None)
        if query.min_duration_ms is not None:
            where.cmp("duration_ns", ">=", query.min_duration_ms * 1_000_000)
        if query.max_duration_ms is not None:
            where.cmp("duration_ns", "<=", query.max_duration_ms * 1_000_000)
        where.window("start_ns", query.since_unix_s, query.until_unix_s)
        where.attributes(self._reader(), "span_attrs", query.attributes)
        sql = (
            f"SELECT {self._SPAN_COLUMNS} FROM spans{where.sql()} "
            "ORDER BY start_ns DESC, id DESC LIMIT ?"
        )
        return [self._span(row) for row in self._query(sql, [*where.params, query.limit])]

    def get_trace(self, trace_id: str) -> list[Span]:
        sql = f"SELECT {self._SPAN_COLUMNS} FROM spans WHERE trace_id = ? ORDER BY start_ns, id"
        return [self._span(row) for row in self._query(sql, (trace_id.lower(),))]

    def find_logs(self, query: LogQuery) -> list[LogRecord]:
        where = Where()
        where.eq("level", query.level)
        where.eq("service", query.service)
        where.eq("trace_id", query.trace_id.lower() if query.trace_id else None)
        if query.body_contains is not None:
            where.conditions.append("instr(body, ?) > 0")
            where.params.append(query.body_contains)
        where.window("time_ns", query.since_unix_s, query.until_unix_s)
        where.attributes(self._reader(), "log_attrs", query.attributes)
        sql = (
            "SELECT time_ns, level, body, service, severity_number, severity_text, trace_id, "
            f"span_id, attributes, resource, scope FROM logs{where.sql()} "
            "ORDER BY time_ns DESC, id DESC LIMIT ?"
        )
        return [
            LogRecord(
                time_unix_ns=r[0],
                level=r[1],
                body=r[2],
                service=r[3],
                severity_number=r[4],
                severity_text=r[5],
                trace_id=r[6],
                span_id=r[7],
                attributes=orjson.loads(r[8]),
                resource_attributes=orjson.loads(r[9]),
                scope=r[10],
            )
            for r in self._query(sql, [*where.params, query.limit])
        ]

    def find_rum(self, query: RumQuery) -> list[RumItem]:
        where = Where()
        where.eq("kind", query.kind)
        where.eq("name", query.name)
        where.eq("session_id", query.session_id)
        where.window("time_ns", query.since_unix_s, query.until_unix_s)
        where.attributes(self._reader(), "rum_attrs", query.attributes)
        sql = (
            "SELECT kind, name, time_ns, message, attributes, vals, trace_id, span_id, "
            f"session_id, page_url, app_name, frames FROM rum{where.sql()} "
            "ORDER BY time_ns DESC, id DESC LIMIT ?"
        )
        return [
            RumItem(
                kind=r[0],
                name=r[1],
                time_unix_ns=r[2],
                message=r[3],
                attributes=orjson.loads(r[4]),
                values=orjson.loads(r[5]),
                trace_id=r[6],
                span_id=r[7],
                session_id=r[8],
                page_url=r[9],
                app_name=r[10],
                frames=tuple(orjson.loads(r[11])),
            )
            for r in self._query(sql, [*where.params, query.limit])
        ]

    def find_alert_notifications(self, query: AlertQuery) -> list[AlertNotification]:
        where = Where()
        where.eq("alertname", query.alertname)
        where.eq("status", query.status)
        where.eq("receiver", query.receiver)
        where.window("received_ns", query.since_unix_s, query.until_unix_s)
        where.attributes(self._reader(), "alert_labels", query.labels)
        sql = (
            "SELECT alertname, status, labels, annotations, starts_at, ends_at, received_ns, "
            "receiver, group_key, notification_status, generator_url, fingerprint "
            f"FROM alerts{where.sql()} ORDER BY received_ns DESC, id DESC LIMIT ?"
        )
        return [
            AlertNotification(
                alertname=r[0],
                status=r[1],
                labels=orjson.loads(r[2]),
                annotations=orjson.loads(r[3]),
                starts_at=r[4],
                ends_at=r[5],
                received_unix_ns=r[6],
                receiver=r[7],
                group_key=r[8],
                notification_status=r[9],
                generator_url=r[10],
                fingerprint=r[11],
            )
            for r in self._query(sql, [*where.params, query.limit])
        ]
