// PostgreSQL through `pg` (traced by the pg instrumentation: one CLIENT span per query,
// with the SQL text). A bounded pool, a statement timeout, a metric per call; every failure
// (refused connection, pool exhausted, statement timeout, lost connection) surfaces as
// DatabaseUnavailable, which the service answers with 503.
import { Inject, Injectable, OnModuleDestroy } from "@nestjs/common";
import { InjectMetric } from "@willsoto/nestjs-prometheus";
import { Pool, type PoolClient, type QueryResultRow } from "pg";
import type { Counter, Histogram } from "prom-client";
import { SETTINGS } from "./settings";
import type { Settings } from "./config";

export const SCHEMA = `
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
`;

const COLUMNS =
  "id::text AS id, idempotency_key, request_hash, order_id, customer_id, method, " +
  "amount_cents::text AS amount_cents, currency, status, gateway_charge_id, decline_code, card_last4, " +
  "attempts, created_at, updated_at";

export interface PaymentRow {
  id: string;
  idempotency_key: string;
  request_hash: string;
  order_id: string | null;
  customer_id: string;
  method: string;
  amount_cents: string;
  currency: string;
  status: string;
  gateway_charge_id: string | null;
  decline_code: string | null;
  card_last4: string | null;
  attempts: number;
  created_at: Date;
  updated_at: Date;
}

export class DatabaseUnavailable extends Error {}

@Injectable()
export class PaymentStore implements OnModuleDestroy {
  private readonly pool: Pool;
  private schemaReady = false;

  constructor(
    @Inject(SETTINGS) settings: Settings,
    @InjectMetric("shop_db_operation_duration_seconds") private readonly duration: Histogram<string>,
    @InjectMetric("shop_db_errors_total") private readonly errors: Counter<string>,
  ) {
    this.pool = new Pool({
      connectionString: settings.databaseUrl,
      max: settings.dbPoolMax,
      connectionTimeoutMillis: settings.dbAcquireTimeoutS * 1000,
      idleTimeoutMillis: 60_000,
      statement_timeout: settings.dbStatementTimeoutMs,
      query_timeout: settings.dbStatementTimeoutMs + 1000,
      application_name: "payment-api",
    });
    // an idle connection the server (or the fault proxy) drops must not crash the process
    this.pool.on("error", () => undefined);
  }

  async onModuleDestroy(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }

  async ensureSchema(): Promise<void> {
    await this.pool.query(SCHEMA);
    this.schemaReady = true;
  }

  private async run<T extends QueryResultRow>(operation: string, sql: string, values: unknown[]): Promise<T[]> {
    const end = this.duration.startTimer({ operation });
    let client: PoolClient | undefined;
    try {
      if (!this.schemaReady && operation !== "ping") await this.ensureSchema();
      client = await this.pool.connect();
      const result = await client.query<T>(sql, values);
      return result.rows;
    } catch (exc) {
      this.errors.inc({ operation });
      const err = exc as Error;
      // a connection that failed mid-query is not given back to the pool
      client?.release(err);
      client = undefined;
      throw new DatabaseUnavailable(`${operation}: ${err.name}: ${err.message}`);
    } finally {
      client?.release();
      end();
    }
  }

  async ping(): Promise<void> {
    await this.run("ping", "SELECT 1", []);
  }

  async insertPending(v: {
    id: string;
    key: string;
    requestHash: string;
    orderId: string | null;
    customerId: string;
    method: string;
    amountCents: number;
    currency: string;
    last4: string | null;
  }): Promise<PaymentRow | null> {
    const sql =
      "INSERT INTO payments (id, idempotency_key, request_hash, order_id, customer_id, " +
      "method, amount_cents, currency, status, card_last4) " +
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9) " +
      `ON CONFLICT (idempotency_key) DO NOTHING RETURNING ${COLUMNS}`;
    const rows = await this.run<PaymentRow>("insert_payment", sql, [
      v.id, v.key, v.requestHash, v.orderId, v.customerId, v.method, v.amountCents, v.currency, v.last4,
    ]);
    return rows[0] ?? null;
  }

  async getByKey(key: string): Promise<PaymentRow | null> {
    const sql = `SELECT ${COLUMNS} FROM payments WHERE idempotency_key = $1`;
    return (await this.run<PaymentRow>("select_payment", sql, [key]))[0] ?? null;
  }

  async get(id: string): Promise<PaymentRow | null> {
    const sql = `SELECT ${COLUMNS} FROM payments WHERE id = $1::uuid`;
    return (await this.run<PaymentRow>("select_payment", sql, [id]))[0] ?? null;
  }

  /** Claim an unknown (or stale pending) payment for a retry; null when another request holds it. */
  async markRetry(id: string, staleAfterS: number): Promise<PaymentRow | null> {
    const sql =
      "UPDATE payments SET status = 'pending', attempts = attempts + 1, updated_at = now() " +
      "WHERE id = $1::uuid AND (status IN ('unknown', 'failed') OR " +
      "(status = 'pending' AND updated_at < now() - make_interval(secs => $2))) " +
      `RETURNING ${COLUMNS}`;
    return (await this.run<PaymentRow>("update_payment", sql, [id, staleAfterS]))[0] ?? null;
  }

  async settle(id: string, status: string, chargeId: string | null, declineCode: string | null): Promise<PaymentRow> {
    const sql =
      "UPDATE payments SET status = $2, gateway_charge_id = COALESCE($3, gateway_charge_id), " +
      `decline_code = $4, updated_at = now() WHERE id = $1::uuid RETURNING ${COLUMNS}`;
    const row = (await this.run<PaymentRow>("update_payment", sql, [id, status, chargeId, declineCode]))[0];
    if (!row) throw new DatabaseUnavailable(`payment ${id} vanished during settle`);
    return row;
  }

  async listUnsettled(olderThanS: number, limit = 100): Promise<PaymentRow[]> {
    const sql =
      `SELECT ${COLUMNS} FROM payments WHERE status IN ('unknown', 'pending') ` +
      "AND updated_at < now() - make_interval(secs => $1) ORDER BY updated_at LIMIT $2";
    return this.run<PaymentRow>("select_payment", sql, [olderThanS, limit]);
  }
}
