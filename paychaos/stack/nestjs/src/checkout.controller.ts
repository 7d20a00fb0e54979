// The HTTP face, the Python API's contract: POST /api/checkout (Idempotency-Key required),
// GET /api/payments/:id, /healthz (liveness), /readyz (the database answers).
import { Controller, Get, Param, Post, Req as NestReq, Res as NestRes } from "@nestjs/common";
import { IDEMPOTENCY_KEY, parseCheckout } from "./checkout";
import { DatabaseUnavailable, PaymentStore } from "./db.service";
import { PaymentService, paymentJson } from "./payment.service";
import { problem, validationProblem, type Problem } from "./problem";
import { sendJson, type Req, type Res } from "./http";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function sendProblem(res: Res, p: Problem): void {
  sendJson(res, p.status, p.body, p.headers, true);
}

@Controller()
export class CheckoutController {
  constructor(
    private readonly payments: PaymentService,
    private readonly store: PaymentStore,
  ) {}

  @Post("/api/checkout")
  async checkout(@NestReq() req: Req, @NestRes() res: Res): Promise<void> {
    const raw = req.headers["idempotency-key"];
    const key = Array.isArray(raw) ? raw[0] : raw;
    if (key === undefined) {
      return sendProblem(res, problem(400, "idempotency-key-missing", "Idempotency-Key header required",
        "send a unique Idempotency-Key header with every checkout"));
    }
    if (!IDEMPOTENCY_KEY.test(key)) {
      return sendProblem(res, problem(400, "idempotency-key-invalid", "Malformed Idempotency-Key",
        "8-255 characters of A-Z a-z 0-9 _ - : ."));
    }
    const parsed = parseCheckout(req.body);
    if (!parsed.request) return sendProblem(res, validationProblem(parsed.errors));
    const answer = await this.payments.checkout(parsed.request, key);
    sendJson(res, answer.status, answer.body, answer.headers, answer.status >= 400 && answer.status !== 402);
  }

  @Get("/api/payments/:id")
  async payment(@Param("id") id: string, @NestRes() res: Res): Promise<void> {
    if (!UUID.test(id)) return sendProblem(res, problem(404, "not-found", "Payment not found", `no payment ${id}`));
    try {
      const row = await this.store.get(id);
      if (row === null) return sendProblem(res, problem(404, "not-found", "Payment not found", `no payment ${id}`));
      sendJson(res, 200, paymentJson(row));
    } catch (exc) {
      if (!(exc instanceof DatabaseUnavailable)) throw exc;
      sendProblem(res, problem(503, "database-unavailable", "Database unavailable", exc.message));
    }
  }

  @Get("/healthz")
  healthz(@NestRes() res: Res): void {
    sendJson(res, 200, { status: "ok" });
  }

  @Get("/readyz")
  async readyz(@NestRes() res: Res): Promise<void> {
    try {
      await this.store.ping();
      sendJson(res, 200, { status: "ready", database: "ok" });
    } catch (exc) {
      sendJson(res, 503, { status: "not ready", database: "unavailable", detail: String((exc as Error).message) });
    }
  }
}
