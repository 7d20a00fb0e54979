// JSON logs on stdout (pino). The pino instrumentation adds `trace_id`, `span_id` and
// `trace_flags` of the active span to every line and sends each record to the OTLP logs
// pipeline too (level, message, and the fields as attributes).
import pino from "pino";

export const log = pino({
  name: "payment-api",
  level: process.env.LOG_LEVEL || "info",
  base: { service: "payment-api" },
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
});
