// The seed's PaymentService: counts every payment in shop_payments_total{method,status}
// (injected with @InjectMetric, as the seed's payment.service.ts does) and runs the checkout
// state machine: pending -> succeeded | declined | unknown -> (retry with the same key).
//
// A retry with the same Idempotency-Key returns the first final outcome and never charges
// again; a retry of an unknown payment asks the gateway again with the same key (the gateway
// deduplicates); a reconciler settles unknown payments from the gateway's ledger.
import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from "@nestjs/common";
import { trace } from "@opentelemetry/api";
import { InjectMetric } from "@willsoto/nestjs-prometheus";
import { createHash, randomUUID } from "node:crypto";
import type { Counter, Gauge, Histogram } from "prom-client";
import { gatewaySource, METHODS, type CheckoutRequest } from "./checkout";
import type { Settings } from "./config";
import { DatabaseUnavailable, PaymentStore, type PaymentRow } from "./db.service";
import { GatewayClient } from "./gateway.client";
import { log } from "./logger";
import { PAYMENT_STATUSES } from "./metrics";
import { problem, type Problem } from "./problem";
import { redactPan } from "./redact";
import { effectiveVersion, readRelease, RELEASE_FILE_ENV, type Release } from "./release";
import { SETTINGS } from "./settings";

export interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string>;
}

const OUTCOME_TO_STATUS: Record<string, string> = { success: "succeeded", declined: "declined" };

function iso(value: unknown): string {
  return value instanceof Date ? value.toISOString() : String(value);
}

export function paymentJson(row: PaymentRow): Record<string, unknown> {
  const cents = Number(row.amount_cents);
  return {
    id: row.id,
    status: row.status,
    method: row.method,
    amount: `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, "0")}`,
    currency: row.currency,
    idempotency_key: row.idempotency_key,
    order_id: row.order_id,
    gateway_charge_id: row.gateway_charge_id,
    decline_code: row.decline_code,
    card_last4: row.card_last4,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

@Injectable()
export class PaymentService implements OnApplicationBootstrap, OnModuleDestroy {
  private reconciler?: NodeJS.Timeout;
  private rollback?: NodeJS.Timeout;
  private reconciling = false;
  private readonly release: Release | null = readRelease(process.env[RELEASE_FILE_ENV]);
  private readonly version: string = effectiveVersion(this.release, Date.now() / 1000);

  constructor(
    @InjectMetric("shop_payments_total") public paymentCounter: Counter<string>,
    @InjectMetric("shop_checkout_duration_seconds") private readonly checkoutDuration: Histogram<string>,
    @InjectMetric("shop_payments_in_flight") private readonly inFlight: Gauge<string>,
    @InjectMetric("shop_payments_reconciled_total") private readonly reconciled: Counter<string>,
    @InjectMetric("shop_gateway_timeouts_total") gatewayTimeouts: Counter<string>,
    @InjectMetric("shop_build_info") buildInfo: Gauge<string>,
    @Inject(SETTINGS) private readonly settings: Settings,
    private readonly store: PaymentStore,
    private readonly gateway: GatewayClient,
  ) {
    // every series starts at 0, so increase() and bottomk see a method before its first payment
    for (const method of METHODS) {
      gatewayTimeouts.inc({ method }, 0);
      for (const status of PAYMENT_STATUSES) paymentCounter.inc({ method, status }, 0);
    }
    buildInfo.set({ version: this.version }, 1);
  }

  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.store.ensureSchema();
    } catch (exc) {
      log.warn({ detail: String(exc) }, "database not ready at start; will retry on first use");
    }
    this.reconciler = setInterval(() => void this.reconcileTick(), this.settings.reconcileIntervalS * 1000);
    this.announceRelease();
  }

  onModuleDestroy(): void {
    if (this.reconciler) clearInterval(this.reconciler);
    if (this.rollback) clearTimeout(this.rollback);
  }

  /** Log the deployment or its rollback (JSON, with the version); schedule the rollback at the TTL. */
  private announceRelease(): void {
    const { release, version } = this;
    if (release === null) {
      log.info({ version }, `payment-api ${version} started`);
      return;
    }
    if (version !== release.version) {
      log.info({ event: "rollback", version, from_version: release.version }, `rolled back to ${version}`);
      return;
    }
    log.info({ event: "deployment", version, previous_version: release.previous }, `deployed ${version}`);
    if (release.untilUnixS === null) return;
    const delayMs = Math.max(0, release.untilUnixS * 1000 - Date.now());
    this.rollback = setTimeout(() => {
      log.info({ event: "rollback", version: release.previous, from_version: version },
        `deployment of ${version} expired: restarting onto ${release.previous}`);
      process.kill(process.pid, "SIGTERM"); // graceful; the supervisor starts the previous
    }, delayMs);
    this.rollback.unref();
  }

  async checkout(req: CheckoutRequest, key: string): Promise<Answer> {
    const end = this.checkoutDuration.startTimer({ method: req.method });
    const span = trace.getActiveSpan();
    span?.setAttribute("payment.method", req.method);
    // client-chosen strings are masked like the logs: a key or a customer id can be a card number
    span?.setAttribute("payment.idempotency_key", redactPan(key));
    span?.setAttribute("customer.id", redactPan(req.customer.id));
    this.inFlight.inc();
    let status = "error";
    try {
      const [answer, outcome] = await this.run(req, key);
      status = outcome;
      return answer;
    } finally {
      this.inFlight.dec();
      end({ status });
    }
  }

  private async run(req: CheckoutRequest, key: string): Promise<[Answer, string]> {
    const method = req.method;
    const requestHash = createHash("sha256").update(JSON.stringify(req)).digest("hex");
    let row: PaymentRow | null;
    try {
      row = await this.store.insertPending({
        id: randomUUID(),
        key,
        requestHash,
        orderId: req.order_id,
        customerId: req.customer.id,
        method,
        amountCents: req.amount_cents,
        currency: req.currency,
        last4: typeof req.payment.last4 === "string" ? req.payment.last4 : null,
      });
      if (row === null) {
        const existing = await this.store.getByKey(key);
        if (existing === null) return [this.inProgress(key), "replay"];
        if (existing.request_hash !== requestHash) {
          return [
            problem(422, "idempotency-key-reused", "Idempotency-Key reused with a different body",
              `key ${key} was first used for another request`, { payment_id: existing.id }),
            "replay",
          ];
        }
        if (existing.status === "succeeded" || existing.status === "declined") {
          return [this.final(existing, true), "replay"];
        }
        row = await this.store.markRetry(existing.id, this.settings.gatewayTimeoutS * 2 + 1);
        if (row === null) return [this.inProgress(key), "replay"];
        log.info({ payment_id: row.id, method }, "retrying payment");
      }
    } catch (exc) {
      if (exc instanceof DatabaseUnavailable) return [this.dbDown(method, exc), "error"];
      throw exc;
    }

    trace.getActiveSpan()?.setAttribute("payment.id", row.id);
    const result = await this.gateway.charge(method, key, {
      amount_cents: req.amount_cents,
      currency: req.currency,
      method,
      source: gatewaySource(req),
      payment_id: row.id,
      description: `order ${req.order_id ?? row.id}`,
      customer: req.customer.id,
    });
    const newStatus = OUTCOME_TO_STATUS[result.outcome] ?? "unknown";
    trace.getActiveSpan()?.setAttribute("payment.status", newStatus);
    try {
      row = await this.store.settle(row.id, newStatus, result.chargeId ?? null, result.declineCode ?? null);
    } catch (exc) {
      // the charge may have happened: the row stays pending and a retry with the same key
      // (or the reconciler) settles it from the gateway, never charging twice
      if (exc instanceof DatabaseUnavailable) return [this.dbDown(method, exc, row.id), "error"];
      throw exc;
    }
    const fields = {
      payment_id: row.id,
      method,
      amount_cents: req.amount_cents,
      currency: req.currency,
      card_last4: row.card_last4,
      outcome: result.outcome,
      customer_id: redactPan(req.customer.id),
    };
    if (result.outcome === "success") {
      this.paymentCounter.inc({ method, status: "success" });
      log.info(fields, "payment succeeded");
      return [this.final(row), "success"];
    }
    if (result.outcome === "declined") {
      this.paymentCounter.inc({ method, status: "declined" });
      log.info({ ...fields, decline_code: result.declineCode }, "payment declined");
      return [this.final(row), "declined"];
    }
    this.paymentCounter.inc({ method, status: "error" });
    if (result.outcome === "timeout") {
      log.error({ ...fields, detail: result.detail }, "gateway timeout, payment left unknown");
      return [
        problem(504, "gateway-timeout", "Payment gateway timeout",
          `the ${method} processor did not answer in ${this.settings.gatewayTimeoutS}s; ` +
            "the payment is unknown and safe to retry with the same Idempotency-Key",
          { payment_id: row.id, payment_status: "unknown" }),
        "error",
      ];
    }
    log.error({ ...fields, detail: result.detail }, "gateway error, payment left unknown");
    return [
      problem(502, "gateway-error", "Payment gateway error",
        `the ${method} processor failed (${result.detail}); the payment is unknown and ` +
          "safe to retry with the same Idempotency-Key",
        { payment_id: row.id, payment_status: "unknown" }),
      "error",
    ];
  }

  final(row: PaymentRow, replayed = false): Answer {
    return {
      status: row.status === "succeeded" ? 201 : 402,
      body: paymentJson(row),
      headers: replayed ? { "Idempotent-Replayed": "true" } : {},
    };
  }

  private inProgress(key: string): Problem {
    return problem(409, "request-in-progress", "A request with this Idempotency-Key is in progress",
      `key ${key} is being processed; retry later`, {}, { "Retry-After": "1" });
  }

  private dbDown(method: string, exc: Error, paymentId?: string): Problem {
    this.paymentCounter.inc({ method, status: "error" });
    log.error({ method, detail: exc.message }, "database unavailable");
    return problem(503, "database-unavailable", "Database unavailable",
      "the payment database did not answer; retry with the same Idempotency-Key",
      { payment_id: paymentId }, { "Retry-After": "1" });
  }

  private async reconcileTick(): Promise<void> {
    if (this.reconciling) return;
    this.reconciling = true;
    try {
      const count = await this.reconcileOnce();
      if (count) log.info({ count }, "reconciled payments");
    } catch (exc) {
      log.warn({ detail: String(exc) }, "reconciler pass failed");
    } finally {
      this.reconciling = false;
    }
  }

  /** Settle unknown/stale payments from the gateway's ledger; how many were settled. */
  async reconcileOnce(): Promise<number> {
    const rows = await this.store.listUnsettled(this.settings.reconcileAfterS);
    let settled = 0;
    for (const row of rows) {
      const answer = await this.gateway.request(
        "GET", `/v1/charges?idempotency_key=${encodeURIComponent(row.idempotency_key)}`, {});
      if (answer.status !== 200) continue;
      const payload = JSON.parse(answer.body) as { data?: unknown; charges?: unknown };
      const charges = (Array.isArray(payload.data) ? payload.data : Array.isArray(payload.charges) ? payload.charges : []) as
        { id?: string; status?: string; decline_code?: string }[];
      const final = charges.filter((c) => c.status === "succeeded" || c.status === "declined");
      const ageS = (Date.now() - new Date(row.updated_at).getTime()) / 1000;
      if (final.length > 0) {
        const charge = final[0];
        await this.store.settle(row.id, charge.status as string, charge.id ?? null, charge.decline_code ?? null);
        this.reconciled.inc({ method: row.method, result: charge.status as string });
        settled++;
      } else if (ageS > this.settings.giveUpAfterS) {
        await this.store.settle(row.id, "failed", null, null);
        this.reconciled.inc({ method: row.method, result: "failed" });
        settled++;
      }
    }
    return settled;
  }
}
