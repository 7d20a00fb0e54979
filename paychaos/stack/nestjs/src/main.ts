// The NestJS payment service (the seed's backend) as paychaos runs it:
//
//   node --require ./dist/tracing.js dist/main.js --host 127.0.0.1 --port 8000 \
//        --database-url postgresql://... --gateway-url http://127.0.0.1:8102
//
// Same HTTP contract and metric names as paychaos' Python API; JSON logs on stdout.
import "./tracing"; // first: the instrumentations patch http, express, pg and pino before they load
import "reflect-metadata";
import { NestFactory } from "@nestjs/core";
import type { NestExpressApplication } from "@nestjs/platform-express";
import type { LoggerService } from "@nestjs/common";
import { InjectionToken } from "@nestjs/common";
import { getToken } from "@willsoto/nestjs-prometheus";
import type { Counter, Histogram } from "prom-client";
import { AppModule } from "./app.module";
import { parseArgs, UsageError, type Settings } from "./config";
import { ProblemFilter } from "./errors.filter";
import type { Req, Res } from "./http";
import { log } from "./logger";
import { shutdownTelemetry } from "./tracing";

// Nest's own messages (module init, routes) as JSON lines too, not its coloured text
const nestLogger: LoggerService = {
  log: (message: unknown) => log.debug({ component: "nest" }, String(message)),
  error: (message: unknown) => log.error({ component: "nest" }, String(message)),
  warn: (message: unknown) => log.warn({ component: "nest" }, String(message)),
};

type Next = (err?: unknown) => void;

async function main(settings: Settings): Promise<void> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.with(settings), {
    bodyParser: false,
    logger: nestLogger,
  });
  if (settings.corsOrigins.length > 0) {
    // the checkout page (stack/webapp) calls the API from its own origin, with the
    // traceparent that makes its fetch the parent of this service's server span; before
    // the RED middleware, so a preflight is answered without a RED sample
    app.enableCors({
      origin: settings.corsOrigins,
      methods: ["GET", "POST", "PUT", "OPTIONS"],
      allowedHeaders: ["Content-Type", "Idempotency-Key", "traceparent", "tracestate", "baggage"],
      maxAge: 600,
    });
  }
  // RED of every request, labelled by route template (`unmatched` for a 404)
  const requests = app.get<Counter<string>>(getToken("http_server_requests_total") as InjectionToken);
  const duration = app.get<Histogram<string>>(getToken("http_server_request_duration_seconds") as InjectionToken);
  app.use((req: Req, res: Res, next: Next) => {
    const start = process.hrtime.bigint();
    res.on("finish", () => {
      const code = res.statusCode;
      const route = req.route?.path ?? (code === 404 ? "unmatched" : req.path);
      const labels = { route, http_method: req.method, code: String(code) };
      requests.inc(labels);
      duration.observe(labels, Number(process.hrtime.bigint() - start) / 1e9);
    });
    next();
  });
  app.useBodyParser("json", { limit: settings.maxBodyBytes, type: () => true, strict: false });
  app.useGlobalFilters(new ProblemFilter());
  app.disable("x-powered-by");
  app.set("etag", false);
  await app.listen(settings.port, settings.host);
  log.info({ host: settings.host, port: settings.port }, "listening");

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    const force = setTimeout(() => process.exit(0), 5000);
    force.unref();
    await app.close().catch(() => undefined);
    await shutdownTelemetry();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

let settings: Settings;
try {
  settings = parseArgs(process.argv.slice(2));
} catch (exc) {
  if (!(exc instanceof UsageError)) throw exc;
  process.stderr.write(`payment-api (nestjs): ${exc.message}\n`);
  process.exit(2);
}
main(settings).catch((exc: Error) => {
  process.stderr.write(`payment-api (nestjs): cannot start: ${exc.message}\n`);
  process.exit(1);
});
