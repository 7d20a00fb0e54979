// The OpenTelemetry SDK's own metrics on the service's /metrics: who watches the watchers.
//
// When the collector hangs or dies, the spans and log records the service produces are lost
// and no trace or log query can say so. The OTLP exporters count what they handed over, with
// `error.type` on what they failed to deliver (the semantic conventions'
// otel.sdk.exporter.{span,log}.exported), into the MeterProvider given to them as
// `selfObsMeterProvider` (experimental in the JS SDK). This module holds that MeterProvider
// with a reader pulled on each Prometheus scrape and shows those counters under the names the
// Python API uses (paychaos/stack/sdk_metrics.py: dots to underscores, `_total`), which the
// TelemetryExportFailing rule reads: otel_sdk_exporter_span_exported_total{error_type=...}.
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { Counter, register } from "prom-client";

class ScrapeReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

const reader = new ScrapeReader();
/** The MeterProvider the OTLP exporters record their own metrics into (tracing.ts). */
export const sdkMeterProvider = new MeterProvider({ readers: [reader] });

// the exporters' attributes, as Prometheus label names
const LABELS = ["error_type", "otel_component_type", "otel_component_name", "server_address", "server_port"];

function labelName(key: string): string {
  return key.replace(/[^a-zA-Z0-9_]/g, "_");
}

/** The cumulative points of the SDK's metric `name`, their attributes as Prometheus labels. */
async function points(name: string): Promise<Array<{ labels: Record<string, string>; value: number }>> {
  const { resourceMetrics } = await reader.collect();
  const found: Array<{ labels: Record<string, string>; value: number }> = [];
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== name) continue;
      for (const point of metric.dataPoints) {
        if (typeof point.value !== "number") continue;
        const labels: Record<string, string> = {};
        for (const [key, value] of Object.entries(point.attributes)) {
          const label = labelName(key);
          if (LABELS.includes(label) && value !== undefined) labels[label] = String(value);
        }
        found.push({ labels, value: point.value });
      }
    }
  }
  return found;
}

/** Show the exporters' `exported` counters on the default prom-client registry (/metrics). */
export function registerSdkMetrics(): void {
  for (const signal of ["span", "log"]) {
    const otelName = `otel.sdk.exporter.${signal}.exported`;
    new Counter({
      name: `otel_sdk_exporter_${signal}_exported_total`,
      help: `The number of ${signal}s for which the export has finished, either successful or failed (error_type set), as the OTLP exporter counts them`,
      labelNames: LABELS,
      registers: [register],
      async collect() {
        const read = await points(otelName);
        this.reset();
        for (const { labels, value } of read) this.inc(labels, value);
      },
    });
  }
}
