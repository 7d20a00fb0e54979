// The checkout body, validated at the edge with the Python API's rules: the same JSON
// shape, so the same clients (paychaos' built-in adapter) drive either service.
//
//   {"order_id": "ord_8f2c", "customer": {"id": "cus_42", "email": "ana@example.com"},
//    "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "9.50"}], "amount": "19.00",
//    "currency": "USD", "method": "visa", "payment": {"card_token": "tok_visa_1a2b", "last4": "4242"}}
//
// Every broken rule is named by a JSON pointer; nothing is thrown.
import { containsPan } from "./redact";
import type { FieldError } from "./problem";

export const METHODS = ["visa", "paypal", "amex", "crypto"] as const;
export type Method = (typeof METHODS)[number];
const CARD_METHODS = new Set<string>(["visa", "amex"]);
const CURRENCIES = ["AUD", "BRL", "CAD", "EUR", "GBP", "JPY", "MXN", "USD"];
export const IDEMPOTENCY_KEY = /^[A-Za-z0-9_\-:.]{8,255}$/;
const EMAIL = /^[^@\s]{1,64}@[^@\s]{1,255}\.[A-Za-z]{2,}$/;
const MONEY = /^(\d{1,9})(?:\.(\d{1,2}))?$/;

export interface CheckoutRequest {
  order_id: string | null;
  customer: { id: string; email: string; name: string | null };
  items: { sku: string; name: string | null; quantity: number; unit_price_cents: number }[];
  amount_cents: number;
  currency: string;
  method: Method;
  payment: Record<string, string | number>;
}

type Json = unknown;

class Checker {
  errors: FieldError[] = [];

  fail(path: (string | number)[], detail: string): undefined {
    this.errors.push({
      pointer: "#" + path.map((p) => "/" + String(p)).join(""),
      field: path.join(".") || "(body)",
      detail,
    });
    return undefined;
  }

  object(value: Json, path: (string | number)[], allowed: string[]): Record<string, Json> | undefined {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return this.fail(path, "must be a JSON object");
    }
    const obj = value as Record<string, Json>;
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) this.fail([...path, key], "is not a field of this object");
    }
    return obj;
  }

  string(
    obj: Record<string, Json>,
    key: string,
    path: (string | number)[],
    opts: { min?: number; max: number; optional?: boolean; pattern?: RegExp; what?: string },
  ): string | null | undefined {
    const at = [...path, key];
    const value = obj[key];
    if (value === undefined || value === null) {
      return opts.optional ? null : this.fail(at, "is required");
    }
    if (typeof value !== "string") return this.fail(at, "must be a string");
    const text = value.trim();
    if (text.length < (opts.min ?? 0)) return this.fail(at, `must have at least ${opts.min} character(s)`);
    if (text.length > opts.max) return this.fail(at, `must have at most ${opts.max} characters`);
    if (opts.pattern && !opts.pattern.test(text)) return this.fail(at, `must be ${opts.what ?? opts.pattern.source}`);
    return text;
  }

  integer(obj: Record<string, Json>, key: string, path: (string | number)[], min: number, max: number, optional = false) {
    const at = [...path, key];
    const value = obj[key];
    if (value === undefined || value === null) return optional ? null : this.fail(at, "is required");
    if (typeof value !== "number" || !Number.isInteger(value)) return this.fail(at, "must be an integer");
    if (value < min || value > max) return this.fail(at, `must be between ${min} and ${max}`);
    return value;
  }

  money(obj: Record<string, Json>, key: string, path: (string | number)[], maxCents: number): number | undefined {
    const at = [...path, key];
    const value = obj[key];
    if (value === undefined || value === null) return this.fail(at, "is required");
    let text: string;
    if (typeof value === "number" && Number.isFinite(value)) text = String(value);
    else if (typeof value === "string") text = value.trim();
    else return this.fail(at, "must be a decimal amount (a string like \"19.00\" or a number)");
    const match = MONEY.exec(text);
    if (!match) return this.fail(at, "must be a decimal with at most 2 places");
    const cents = Number(match[1]) * 100 + Number((match[2] ?? "0").padEnd(2, "0"));
    if (cents <= 0) return this.fail(at, "must be greater than 0");
    if (cents > maxCents) return this.fail(at, `must be at most ${maxCents / 100}`);
    return cents;
  }
}

export function parseCheckout(body: Json): { request?: CheckoutRequest; errors: FieldError[] } {
  const c = new Checker();
  if (body === undefined || body === null || (typeof body === "object" && Object.keys(body).length === 0 && !Array.isArray(body))) {
    c.fail([], "the request body is empty; send the checkout as a JSON object");
    return { errors: c.errors };
  }
  const root = c.object(body, [], ["order_id", "customer", "items", "amount", "currency", "method", "payment"]);
  if (!root) return { errors: c.errors };
  const orderId = c.string(root, "order_id", [], { max: 64, optional: true });

  let customer: CheckoutRequest["customer"] | undefined;
  if (root.customer === undefined) c.fail(["customer"], "is required");
  else {
    const obj = c.object(root.customer, ["customer"], ["id", "email", "name"]);
    if (obj) {
      const id = c.string(obj, "id", ["customer"], { min: 1, max: 64 });
      const email = c.string(obj, "email", ["customer"], { max: 320, pattern: EMAIL, what: "an email address" });
      const name = c.string(obj, "name", ["customer"], { max: 200, optional: true });
      if (id && email && name !== undefined) customer = { id, email, name };
    }
  }

  const items: CheckoutRequest["items"] = [];
  if (root.items === undefined) c.fail(["items"], "is required");
  else if (!Array.isArray(root.items)) c.fail(["items"], "must be a list");
  else if (root.items.length < 1 || root.items.length > 50) c.fail(["items"], "must hold 1 to 50 items");
  else {
    root.items.forEach((raw: Json, i: number) => {
      const path = ["items", i];
      const obj = c.object(raw, path, ["sku", "name", "quantity", "unit_price"]);
      if (!obj) return;
      const sku = c.string(obj, "sku", path, { min: 1, max: 64 });
      const name = c.string(obj, "name", path, { max: 200, optional: true });
      const quantity = c.integer(obj, "quantity", path, 1, 100);
      const price = c.money(obj, "unit_price", path, 100000_00);
      if (sku && name !== undefined && typeof quantity === "number" && price !== undefined) {
        items.push({ sku, name, quantity, unit_price_cents: price });
      }
    });
  }

  const amount = c.money(root, "amount", [], 1000000_00);
  const currency = c.string(root, "currency", [], { max: 3 });
  if (currency && !CURRENCIES.includes(currency)) {
    c.fail(["currency"], `unsupported currency; one of ${CURRENCIES.join(", ")}`);
  }
  let method: Method | undefined;
  if (root.method === undefined) c.fail(["method"], "is required");
  else if (typeof root.method !== "string" || !(METHODS as readonly string[]).includes(root.method)) {
    c.fail(["method"], `must be one of ${METHODS.join(", ")}`);
  } else method = root.method as Method;

  const payment: Record<string, string | number> = {};
  if (root.payment === undefined) c.fail(["payment"], "is required");
  else {
    const keys = ["card_token", "last4", "exp_month", "exp_year", "payer_email", "wallet", "network"];
    const obj = c.object(root.payment, ["payment"], keys);
    if (obj) {
      const p = ["payment"];
      const fields: [string, string | number | null | undefined][] = [
        ["card_token", c.string(obj, "card_token", p, { min: 4, max: 128, optional: true })],
        ["last4", c.string(obj, "last4", p, { max: 4, optional: true, pattern: /^\d{4}$/, what: "four digits" })],
        ["exp_month", c.integer(obj, "exp_month", p, 1, 12, true)],
        ["exp_year", c.integer(obj, "exp_year", p, 2000, 2100, true)],
        ["payer_email", c.string(obj, "payer_email", p, { max: 320, optional: true, pattern: EMAIL, what: "an email address" })],
        ["wallet", c.string(obj, "wallet", p, { min: 16, max: 128, optional: true })],
        ["network", c.string(obj, "network", p, { max: 32, optional: true })],
      ];
      for (const [k, v] of fields) if (v !== null && v !== undefined) payment[k] = v;
      if (typeof payment.card_token === "string" && containsPan(payment.card_token)) {
        c.fail(["payment", "card_token"], "looks like a card number; send a token, never the PAN");
      }
    }
  }
  if (c.errors.length > 0 || !customer || amount === undefined || !currency || !method || orderId === undefined) {
    return { errors: c.errors };
  }
  // rules across fields (pointer `#`), as the Python API's model validator
  const total = items.reduce((sum, it) => sum + it.unit_price_cents * it.quantity, 0);
  if (total !== amount) {
    c.fail([], `amount ${(amount / 100).toFixed(2)} does not equal the items' total ${(total / 100).toFixed(2)}`);
  } else if (CARD_METHODS.has(method) && (!payment.card_token || !payment.last4)) {
    c.fail([], `method ${method} needs payment.card_token and payment.last4`);
  } else if (method === "paypal" && !payment.payer_email) {
    c.fail([], "method paypal needs payment.payer_email (an email address)");
  } else if (method === "crypto" && !payment.wallet) {
    c.fail([], "method crypto needs payment.wallet");
  }
  if (c.errors.length > 0) return { errors: c.errors };
  return {
    errors: [],
    request: { order_id: orderId, customer, items, amount_cents: amount, currency, method, payment },
  };
}

/** The `source` sent to the gateway: tokens only, never a card number. */
export function gatewaySource(req: CheckoutRequest): Record<string, string> {
  const p = req.payment;
  if (CARD_METHODS.has(req.method)) return { card_token: String(p.card_token ?? ""), last4: String(p.last4 ?? "") };
  if (req.method === "paypal") return { payer_email: String(p.payer_email ?? "") };
  return { wallet: String(p.wallet ?? ""), network: String(p.network ?? "ethereum") };
}
