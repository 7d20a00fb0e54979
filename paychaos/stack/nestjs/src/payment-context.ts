// The payment method a gateway call is made for, carried in the OpenTelemetry context from
// GatewayClient.charge to the http instrumentation's start hook (tracing.ts), which puts it on
// the CLIENT span as `payment.method`, as the Python API's gateway span carries it. It never
// leaves the process (not baggage, not a header).
import { context, createContextKey, type Context } from "@opentelemetry/api";

const PAYMENT_METHOD = createContextKey("paychaos.payment.method");

/** Run `fn` with `method` as the payment method of the calls it makes. */
export function withPaymentMethod<T>(method: string, fn: () => T): T {
  return context.with(context.active().setValue(PAYMENT_METHOD, method), fn);
}

/** The payment method set by withPaymentMethod in `ctx`, if any. */
export function paymentMethodOf(ctx: Context): string | undefined {
  const value = ctx.getValue(PAYMENT_METHOD);
  return typeof value === "string" ? value : undefined;
}
