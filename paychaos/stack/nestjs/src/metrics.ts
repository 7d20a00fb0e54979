// The service's Prometheus metrics through @willsoto/nestjs-prometheus (prom-client), with the
// same names and labels as the Python API's: they are the contract the alert rules in
// stack/prometheus/rules/ and the seed's `bottomk` query read. The default prom-client
// metrics (process_*, nodejs_*) come from PrometheusModule's defaultMetrics.
import {
  makeCounterProvider,
  makeGaugeProvider,
  makeHistogramProvider,
} from "@willsoto/nestjs-prometheus";

export const PAYMENTS = "shop_payments_total";
export const PAYMENT_STATUSES = ["success", "declined", "error"] as const;
const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10];
const DB_BUCKETS_S = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5];

export const metricProviders = [
  makeCounterProvider({
    name: PAYMENTS,
    help: "Payments processed, by payment method and outcome (the seed's business metric)",
    labelNames: ["method", "status"],
  }),
  makeCounterProvider({
    name: "shop_gateway_timeouts_total",
    help: "Gateway calls that timed out, by payment method",
    labelNames: ["method"],
  }),
  makeCounterProvider({
    name: "http_server_requests_total",
    help: "HTTP requests served (RED: rate and errors)",
    labelNames: ["route", "http_method", "code"],
  }),
  makeHistogramProvider({
    name: "http_server_request_duration_seconds",
    help: "HTTP request duration (RED: duration)",
    labelNames: ["route", "http_method", "code"],
    buckets: LATENCY_BUCKETS_S,
  }),
  makeHistogramProvider({
    name: "shop_checkout_duration_seconds",
    help: "End-to-end checkout duration inside the API, by payment method and outcome",
    labelNames: ["method", "status"],
    buckets: LATENCY_BUCKETS_S,
  }),
  makeHistogramProvider({
    name: "shop_gateway_request_duration_seconds",
    help: "Duration of calls to the payment gateway, by payment method and outcome",
    labelNames: ["method", "outcome"],
    buckets: LATENCY_BUCKETS_S,
  }),
  makeHistogramProvider({
    name: "shop_db_operation_duration_seconds",
    help: "Duration of database operations",
    labelNames: ["operation"],
    buckets: DB_BUCKETS_S,
  }),
  makeCounterProvider({
    name: "shop_db_errors_total",
    help: "Database operations that failed",
    labelNames: ["operation"],
  }),
  makeGaugeProvider({
    name: "shop_payments_in_flight",
    help: "Checkouts being processed right now",
  }),
  makeCounterProvider({
    name: "shop_payments_reconciled_total",
    help: "Payments left unknown by a gateway failure and settled later from the gateway ledger",
    labelNames: ["method", "result"],
  }),
  makeGaugeProvider({
    name: "shop_build_info",
    help: "1 for the version this process runs (a deployment shows as a new version)",
    labelNames: ["version"],
  }),
];
