"""The payment API's PostgreSQL access: one table, bounded pool, a span and a metric per call.

Every database failure (refused connection, pool exhausted, statement timeout,
lost connection) surfaces as :class:`DatabaseUnavailable`, which the API
answers with 503.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from paychaos.stack.api.metrics import ApiMetrics

SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    id                UUID PRIMARY KEY,
    idempotency_key   TEXT NOT NULL UNIQUE,
    request_hash      TEXT NOT NULL,
    order_id          TEXT,
    customer_id       TEXT NOT NULL,
    method            TEXT NOT NULL,
    amount_cents      BIGINT NOT NULL CHECK (amount_cents > 0),
    currency          TEXT NOT NULL,
    status            TEXT NOT NULL,
    gateway_charge_id TEXT,
    decline_code      TEXT,
    card_last4        TEXT,
    attempts          INTEGER NOT NULL DEFAULT 1,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS payments_status_idx ON payments (status, updated_at);
"""

_COLUMNS = (
    "id::text AS id, idempotency_key, request_hash, order_id, customer_id, method, "
    "amount_cents, currency, status, gateway_charge_id, decline_code, card_last4, attempts, "
    "created_at, updated_at"
)

T = TypeVar("T")


class DatabaseUnavailable(Exception):
    """The database could not answer in time (down, overloaded or unreachable)."""


@dataclass(frozen=True)
class DbSettings:
    """Bounds of every database interaction."""

    url: str
    pool_min: int = 1
    pool_max: int = 10
    statement_timeout_ms: int = 2000
    acquire_timeout_s: float = 1.0
    connect_timeout_s: float = 2.0


_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


class PaymentStore:
    """Payments in PostgreSQL through an ``asyncpg`` pool."""

    def __init__(self, settings: DbSettings, tracer: Tracer, metrics: ApiMetrics) -> None:
        self.settings = settings
        self._tracer = tracer
        self._metrics = metrics
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self._schema_ready = False
        parts = urlsplit(settings.url)
        self._peer: dict[str, str | int] = {
            "db.system": "postgresql",
            "db.namespace": (parts.path or "/postgres").lstrip("/"),
            "server.address": parts.hostname or "",
            "server.port": parts.port or 5432,
        }

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._pool is None:
                timeout_s = self.settings.statement_timeout_ms / 1000 + 1
                self._pool = await asyncpg.create_pool(
                    self.settings.url,
                    min_size=0,
                    max_size=self.settings.pool_max,
                    command_timeout=timeout_s,
                    timeout=self.settings.connect_timeout_s,
                    max_inactive_connection_lifetime=60,
                    server_settings={
                        "statement_timeout": str(self.settings.statement_timeout_ms),
                        "application_name": "payment-api",
                    },
                )
            return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), timeout=3)
            except (TimeoutError, *_DB_ERRORS):
                self._pool.terminate()
            self._pool = None

    async def _run(
        self,
        operation: str,
        sql: str,
        call: Callable[[asyncpg.Connection], Awaitable[T]],
    ) -> T:
        """Run ``call`` on a pooled connection inside a CLIENT span, timed and counted."""
        verb = sql.lstrip().split(None, 1)[0].upper()
        start = time.perf_counter()
        with self._tracer.start_as_current_span(
            f"{verb} payments",
            kind=SpanKind.CLIENT,
            attributes={
                **self._peer,
                "db.operation.name": verb,
                "db.collection.name": "payments",
                "db.query.text": sql,
                "paychaos.db.operation": operation,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                if not self._schema_ready and operation != "ping":
                    await self.ensure_schema()
                pool = await self._get_pool()
                async with pool.acquire(timeout=self.settings.acquire_timeout_s) as conn:
                    result = await call(conn)
            except _DB_ERRORS as exc:
                self._metrics.db_errors.labels(operation).inc()
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                span.set_attribute("error.type", type(exc).__name__)
                raise DatabaseUnavailable(f"{operation}: {type(exc).__name__}: {exc}") from exc
            finally:
                self._metrics.db_duration.labels(operation).observe(time.perf_counter() - start)
        return result

    async def ensure_schema(self) -> None:
        pool = await self._get_pool()
        async with pool.acquire(timeout=self.settings.acquire_timeout_s) as conn:
            await conn.execute(SCHEMA)
        self._schema_ready = True

    async def ping(self) -> None:
        sql = "SELECT 1"
        await self._run("ping", sql, lambda conn: conn.fetchval(sql))

    async def insert_pending(self, values: dict[str, Any]) -> dict[str, Any] | None:
        """Insert a new pending payment; ``None`` when the idempotency key already exists."""
        sql = (
            "INSERT INTO payments (id, idempotency_key, request_hash, order_id, customer_id, "
            "method, amount_cents, currency, status, card_last4) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9) "
            f"ON CONFLICT (idempotency_key) DO NOTHING RETURNING {_COLUMNS}"
        )
        args = (
            values["id"],
            values["idempotency_key"],
            values["request_hash"],
            values["order_id"],
            values["customer_id"],
            values["method"],
            values["amount_cents"],
            values["currency"],
            values["card_last4"],
        )
        row = await self._run("insert_payment", sql, lambda conn: conn.fetchrow(sql, *args))
        return dict(row) if row is not None else None

    async def get_by_key(self, key: str) -> dict[str, Any] | None:
        sql = f"SELECT {_COLUMNS} FROM payments WHERE idempotency_key = $1"
        row = await self._run("select_payment", sql, lambda conn: conn.fetchrow(sql, key))
        return dict(row) if row is not None else None

    async def get(self, payment_id: str) -> dict[str, Any] | None:
        sql = f"SELECT {_COLUMNS} FROM payments WHERE id = $1::uuid"
        row = await self._run("select_payment", sql, lambda conn: conn.fetchrow(sql, payment_id))
        return dict(row) if row is not None else None

    async def mark_retry(self, payment_id: str, stale_after_s: float) -> dict[str, Any] | None:
        """Claim an unknown (or stale pending) payment for a retry; ``None`` if it is held."""
        sql = (
            "UPDATE payments SET status = 'pending', attempts = attempts + 1, updated_at = now() "
            "WHERE id = $1::uuid AND (status IN ('unknown', 'failed') OR "
            "(status = 'pending' AND updated_at < now() - make_interval(secs => $2))) "
            f"RETURNING {_COLUMNS}"
        )
        row = await self._run(
            "update_payment", sql, lambda conn: conn.fetchrow(sql, payment_id, stale_after_s)
        )
        return dict(row) if row is not None else None

    async def settle(
        self,
        payment_id: str,
        status: str,
        charge_id: str | None,
        decline_code: str | None,
    ) -> dict[str, Any]:
        sql = (
            "UPDATE payments SET status = $2, gateway_charge_id = COALESCE($3, gateway_charge_id), "
            f"decline_code = $4, updated_at = now() WHERE id = $1::uuid RETURNING {_COLUMNS}"
        )
        row = await self._run(
            "update_payment",
            sql,
            lambda conn: conn.fetchrow(sql, payment_id, status, charge_id, decline_code),
        )
        if row is None:
            raise DatabaseUnavailable(f"payment {payment_id} vanished during settle")
        return dict(row)

    async def list_unsettled(self, older_than_s: float, limit: int = 100) -> list[dict[str, Any]]:
        sql = (
            f"SELECT {_COLUMNS} FROM payments WHERE status IN ('unknown', 'pending') "
            "AND updated_at < now() - make_interval(secs => $1) ORDER BY updated_at LIMIT $2"
        )
        rows = await self._run(
            "select_payment", sql, lambda conn: conn.fetch(sql, older_than_s, limit)
        )
        return [dict(row) for row in rows]
