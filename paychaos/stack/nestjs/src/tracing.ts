// OpenTelemetry for Node, loaded before the app (`node --require ./dist/tracing.js`) so the
// instrumentations patch `http`, `express`, `pg` and `pino` before they are imported.
//
// Traces and logs go over OTLP/HTTP in protobuf (`application/x-protobuf`, the OTLP/HTTP
// default, which the embedded collector accepts) to $OTEL_EXPORTER_OTLP_ENDPOINT
// (`/v1/traces`, `/v1/logs` appended by the exporters). OTEL_SDK_DISABLED=true turns it off.
import { context, diag, DiagLogLevel, SpanStatusCode, type DiagLogger } from "@opentelemetry/api";
import { logs } from "@opentelemetry/api-logs";
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-proto";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { registerInstrumentations } from "@opentelemetry/instrumentation";
import { ExpressInstrumentation, ExpressLayerType } from "@opentelemetry/instrumentation-express";
import { HttpInstrumentation } from "@opentelemetry/instrumentation-http";
import { PgInstrumentation } from "@opentelemetry/instrumentation-pg";
import { PinoInstrumentation } from "@opentelemetry/instrumentation-pino";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import { paymentMethodOf } from "./payment-context";
import { registerSdkMetrics, sdkMeterProvider } from "./sdk-metrics";

export const SERVICE_NAME = process.env.OTEL_SERVICE_NAME || "payment-api";
const NOT_TRACED = new Set(["/metrics", "/healthz", "/readyz"]);

// The SDK's own complaints (an export that failed) as one JSON line on stderr, never a trace.
const diagLogger: DiagLogger = {
  error: (message) => process.stderr.write(JSON.stringify({ level: "error", component: "otel", msg: message }) + "\n"),
  warn: (message) => process.stderr.write(JSON.stringify({ level: "warn", component: "otel", msg: message }) + "\n"),
  info: () => undefined,
  debug: () => undefined,
  verbose: () => undefined,
};

let shutdown: () => Promise<void> = async () => undefined;

if ((process.env.OTEL_SDK_DISABLED || "").toLowerCase() !== "true") {
  diag.setLogger(diagLogger, DiagLogLevel.WARN);
  const resource = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: SERVICE_NAME,
    [ATTR_SERVICE_VERSION]: process.env.npm_package_version || "0.1.0",
    "paychaos.app": "nestjs",
  });
  const batch = { maxQueueSize: 8192, scheduledDelayMillis: 500, exportTimeoutMillis: 5000 };
  // each export gives up after 2 s, as the Python API's; the exporters count what they
  // delivered and what they failed to (error.type) into sdkMeterProvider, shown on /metrics
  const exporter = { timeoutMillis: 2000, selfObsMeterProvider: sdkMeterProvider };
  registerSdkMetrics();
  const tracerProvider = new NodeTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter(exporter), batch)],
  });
  tracerProvider.register();
  const loggerProvider = new LoggerProvider({
    resource,
    processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter(exporter), ...batch })],
  });
  logs.setGlobalLoggerProvider(loggerProvider);
  registerInstrumentations({
    tracerProvider,
    loggerProvider,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => NOT_TRACED.has((req.url || "").split("?")[0]),
        // the gateway call's span carries the payment method it charges (GatewayClient.charge)
        startOutgoingSpanHook: () => {
          const method = paymentMethodOf(context.active());
          return method ? { "payment.method": method } : {};
        },
        // A decline (402) is the gateway's business answer, not a failed call: the Python
        // API leaves its gateway span's status unset for it and marks only timeouts and
        // errors. The instrumentation would mark every 4xx of a CLIENT span ERROR when the
        // response ends, and an ERROR can only be overridden by OK (the API ignores UNSET),
        // so a gateway charge answered 402 is marked OK here, before that happens.
        responseHook: (span, response) => {
          // the method is in the context of the gateway charge's request only (GatewayClient)
          if (response.statusCode === 402 && paymentMethodOf(context.active())) {
            span.setStatus({ code: SpanStatusCode.OK });
          }
        },
      }),
      // the route names the server span (`POST /api/checkout`); express's own layers (body
      // parser, Nest's router) would only add spans of microseconds to every trace
      new ExpressInstrumentation({
        ignoreLayersType: [ExpressLayerType.MIDDLEWARE, ExpressLayerType.REQUEST_HANDLER, ExpressLayerType.ROUTER],
      }),
      new PgInstrumentation({ requireParentSpan: true, enhancedDatabaseReporting: false }),
      new PinoInstrumentation(),
    ],
  });
  shutdown = async () => {
    await Promise.allSettled([tracerProvider.shutdown(), loggerProvider.shutdown()]);
    await sdkMeterProvider.shutdown();
  };
}

export function shutdownTelemetry(): Promise<void> {
  return shutdown();
}
