"""The SQL side of the store: schema, and the WHERE-clause builder for queries.

Kept apart from :mod:`paychaos.stack.collector.store` (connections, threads, rows) so
each module has one job. See the store's docstring for why these indexes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from paychaos.contracts.errors import StackError
from paychaos.contracts.signals import AttributeValue, attribute_text

SCHEMA_VERSION = 2  # 2: rum.frames (an exception's stack trace)
RARE_VALUE_ITEMS = 2_000  # below this, attribute lookups go through the (key, value) index

SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    id INTEGER PRIMARY KEY, trace_id TEXT NOT NULL, span_id TEXT NOT NULL,
    parent_span_id TEXT, name TEXT NOT NULL, service TEXT NOT NULL, kind TEXT NOT NULL,
    start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, duration_ns INTEGER NOT NULL,
    status TEXT NOT NULL, status_message TEXT NOT NULL, attributes TEXT NOT NULL,
    resource TEXT NOT NULL, scope TEXT NOT NULL, events TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS spans_trace ON spans(trace_id);
CREATE INDEX IF NOT EXISTS spans_service_name_start ON spans(service, name, start_ns);
CREATE INDEX IF NOT EXISTS spans_service_start ON spans(service, start_ns);
CREATE INDEX IF NOT EXISTS spans_name_start ON spans(name, start_ns);
CREATE INDEX IF NOT EXISTS spans_status_start ON spans(status, start_ns);
CREATE INDEX IF NOT EXISTS spans_start ON spans(start_ns);
CREATE INDEX IF NOT EXISTS spans_duration ON spans(duration_ns);

CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, level TEXT NOT NULL, body TEXT NOT NULL,
    service TEXT NOT NULL, severity_number INTEGER NOT NULL, severity_text TEXT NOT NULL,
    trace_id TEXT, span_id TEXT, attributes TEXT NOT NULL, resource TEXT NOT NULL,
    scope TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS logs_service_level_time ON logs(service, level, time_ns);
CREATE INDEX IF NOT EXISTS logs_service_time ON logs(service, time_ns);
CREATE INDEX IF NOT EXISTS logs_level_time ON logs(level, time_ns);
CREATE INDEX IF NOT EXISTS logs_time ON logs(time_ns);
CREATE INDEX IF NOT EXISTS logs_trace ON logs(trace_id);

CREATE TABLE IF NOT EXISTS rum (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, time_ns INTEGER NOT NULL,
    message TEXT NOT NULL, attributes TEXT NOT NULL, vals TEXT NOT NULL, trace_id TEXT,
    span_id TEXT, session_id TEXT, page_url TEXT, app_name TEXT, frames TEXT NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS rum_kind_name_time ON rum(kind, name, time_ns);
CREATE INDEX IF NOT EXISTS rum_time ON rum(time_ns);

CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, alertname TEXT NOT NULL, status TEXT NOT NULL,
    labels TEXT NOT NULL, annotations TEXT NOT NULL, starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL, received_ns INTEGER NOT NULL, receiver TEXT NOT NULL,
    group_key TEXT NOT NULL, notification_status TEXT NOT NULL, generator_url TEXT NOT NULL,
    fingerprint TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_name_status_time ON alerts(alertname, status, received_ns);
CREATE INDEX IF NOT EXISTS alerts_time ON alerts(received_ns);
"""

# What a database made by an older version lacks (CREATE TABLE IF NOT EXISTS keeps it).
MIGRATIONS = {
    "rum": {"frames": "ALTER TABLE rum ADD COLUMN frames TEXT NOT NULL DEFAULT '[]'"},
}


def migrate(conn: sqlite3.Connection) -> None:
    """Add the columns an older database lacks (inside the caller's transaction)."""
    for table, columns in MIGRATIONS.items():
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for column, statement in columns.items():
            if column not in present:
                conn.execute(statement)


ATTR_TABLES = {
    "spans": "span_attrs",
    "logs": "log_attrs",
    "rum": "rum_attrs",
    "alerts": "alert_labels",
}


#: What one stored item weighs (:meth:`SqliteStore.volume`): its text fields as UTF-8
#: bytes plus 8 bytes per stored number (the row id and the derived span duration are
#: not counted). Per table: the time column windows are read on, the text columns, and
#: how many numbers an item holds.
VOLUME_COLUMNS: dict[str, tuple[str, tuple[str, ...], int]] = {
    "spans": (
        "start_ns",
        (
            "trace_id", "span_id", "parent_span_id", "name", "service", "kind", "status",
            "status_message", "attributes", "resource", "scope", "events",
        ),
        2,  # start_ns, end_ns
    ),
    "logs": (
        "time_ns",
        (
            "level", "body", "service", "severity_text", "trace_id", "span_id", "attributes",
            "resource", "scope",
        ),
        2,  # time_ns, severity_number
    ),
    "rum": (
        "time_ns",
        (
            "kind", "name", "message", "attributes", "vals", "trace_id", "span_id",
            "session_id", "page_url", "app_name", "frames",
        ),
        1,  # time_ns
    ),
}  # fmt: skip


def volume_sql(table: str) -> str:
    """``SELECT count, bytes`` of ``table``'s items whose time is in ``[?, ?)``."""
    time_column, texts, numbers = VOLUME_COLUMNS[table]
    size = " + ".join(f"coalesce(length(CAST({c} AS BLOB)), 0)" for c in texts)
    return (
        f"SELECT count(*), coalesce(sum({size} + {8 * numbers}), 0) FROM {table} "
        f"WHERE {time_column} >= ? AND {time_column} < ?"
    )


def attr_schema(table: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (item INTEGER NOT NULL, key TEXT NOT NULL, "
        f"value TEXT NOT NULL, PRIMARY KEY (item, key)) WITHOUT ROWID;"
        f"CREATE INDEX IF NOT EXISTS {table}_kv ON {table}(key, value, item);"
    )


class Where:
    """Accumulates SQL conditions and their parameters."""

    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.params: list[Any] = []

    def eq(self, column: str, value: Any) -> None:
        if value is not None:
            self.conditions.append(f"{column} = ?")
            self.params.append(value)

    def cmp(self, column: str, op: str, value: Any) -> None:
        if value is not None:
            self.conditions.append(f"{column} {op} ?")
            self.params.append(value)

    def window(self, column: str, since_unix_s: float | None, until_unix_s: float | None) -> None:
        if since_unix_s is not None:
            self.cmp(column, ">=", int(since_unix_s * 1_000_000_000))
        if until_unix_s is not None:
            self.cmp(column, "<", int(until_unix_s * 1_000_000_000))

    def attributes(
        self, conn: sqlite3.Connection, table: str, wanted: Mapping[str, AttributeValue]
    ) -> None:
        """Attribute equality, phrased by how many items carry the value.

        A rare value (a few items: an order id) is best looked up through the
        ``(key, value)`` index (``id IN (...)``); a common one (``method=visa``)
        is best checked row by row while walking newest first (``EXISTS`` on the
        primary key), which stops as soon as ``limit`` rows matched.
        """
        owner = next(main for main, attrs in ATTR_TABLES.items() if attrs == table)
        for key, value in wanted.items():
            text = attribute_text(value)
            probe = (
                f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE key = ? AND value = ? "
                f"LIMIT {RARE_VALUE_ITEMS + 1})"
            )
            try:
                rare = conn.execute(probe, (key, text)).fetchone()[0] <= RARE_VALUE_ITEMS
            except sqlite3.Error as exc:
                raise StackError(f"telemetry query failed: {exc}") from exc
            if rare:
                self.conditions.append(
                    f"id IN (SELECT item FROM {table} WHERE key = ? AND value = ?)"
                )
            else:
                self.conditions.append(
                    f"EXISTS (SELECT 1 FROM {table} WHERE item = {owner}.id AND key = ? AND value = ?)"
                )
            self.params.extend((key, text))

    def sql(self) -> str:
        return " WHERE " + " AND ".join(self.conditions) if self.conditions else ""
