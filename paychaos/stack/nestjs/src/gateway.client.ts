// The client of the payment gateway: `POST /v1/charges` with the payment's Idempotency-Key (a
// retry never charges twice), a hard total timeout, and node:http so the http
// instrumentation makes the CLIENT span and propagates the W3C traceparent to the gateway.
import { Inject, Injectable, OnModuleDestroy } from "@nestjs/common";
import { InjectMetric } from "@willsoto/nestjs-prometheus";
import http from "node:http";
import type { Counter, Histogram } from "prom-client";
import type { Settings } from "./config";
import { withPaymentMethod } from "./payment-context";
import { SETTINGS } from "./settings";

export type Outcome = "success" | "declined" | "timeout" | "error";

export interface ChargeResult {
  outcome: Outcome;
  chargeId?: string | null;
  declineCode?: string | null;
  httpStatus?: number;
  detail: string;
}

interface RawAnswer {
  status: number;
  body: string;
}

class Timeout extends Error {}

@Injectable()
export class GatewayClient implements OnModuleDestroy {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  readonly base: URL;

  constructor(
    @Inject(SETTINGS) private readonly settings: Settings,
    @InjectMetric("shop_gateway_request_duration_seconds") private readonly duration: Histogram<string>,
    @InjectMetric("shop_gateway_timeouts_total") private readonly timeouts: Counter<string>,
  ) {
    this.base = new URL(settings.gatewayUrl);
  }

  onModuleDestroy(): void {
    this.agent.destroy();
  }

  /** GET or POST on the gateway within the timeout; rejects with Timeout or a transport error. */
  request(method: "GET" | "POST", path: string, headers: Record<string, string>, body?: string): Promise<RawAnswer> {
    const timeoutMs = this.settings.gatewayTimeoutS * 1000;
    return new Promise<RawAnswer>((resolve, reject) => {
      const req = http.request(
        new URL(path, this.base),
        { method, agent: this.agent, headers: body ? { ...headers, "Content-Length": Buffer.byteLength(body) } : headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
          });
          res.on("error", (e) => {
            clearTimeout(timer);
            reject(e);
          });
        },
      );
      const timer = setTimeout(() => req.destroy(new Timeout(`no answer within ${this.settings.gatewayTimeoutS}s`)), timeoutMs);
      req.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      if (body) req.write(body);
      req.end();
    });
  }

  async charge(method: string, idempotencyKey: string, payload: Record<string, unknown>): Promise<ChargeResult> {
    const end = this.duration.startTimer({ method });
    const result = await withPaymentMethod(method, () => this.post(idempotencyKey, payload));
    end({ outcome: result.outcome });
    if (result.outcome === "timeout") this.timeouts.inc({ method });
    return result;
  }

  private async post(idempotencyKey: string, payload: Record<string, unknown>): Promise<ChargeResult> {
    let answer: RawAnswer;
    try {
      answer = await this.request(
        "POST",
        "/v1/charges",
        { "Idempotency-Key": idempotencyKey, "Content-Type": "application/json" },
        JSON.stringify(payload),
      );
    } catch (exc) {
      if (exc instanceof Timeout) return { outcome: "timeout", detail: exc.message };
      const err = exc as Error & { code?: string };
      return { outcome: "error", detail: `${err.code ?? err.name}: ${err.message}` };
    }
    let data: Record<string, unknown> = {};
    try {
      const parsed: unknown = answer.body ? JSON.parse(answer.body) : {};
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) data = parsed as Record<string, unknown>;
    } catch {
      data = {};
    }
    const status = answer.status;
    const id = typeof data.id === "string" ? data.id : null;
    if (status === 201 || (status >= 200 && status < 300 && data.status === "succeeded")) {
      return { outcome: "success", chargeId: id, httpStatus: status, detail: "" };
    }
    if (status === 402) {
      const code = typeof data.decline_code === "string" && data.decline_code ? data.decline_code : "declined";
      return { outcome: "declined", chargeId: id, declineCode: code, httpStatus: status, detail: "" };
    }
    if (status === 504) return { outcome: "timeout", httpStatus: status, detail: "gateway answered 504" };
    const error = data.error as { message?: string } | undefined;
    const message = error && typeof error === "object" ? (error.message ?? "") : answer.body.slice(0, 200);
    return { outcome: "error", httpStatus: status, detail: `gateway ${status}: ${message}` };
  }
}
