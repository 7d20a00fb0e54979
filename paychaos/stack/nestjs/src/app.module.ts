import { Module, type DynamicModule } from "@nestjs/common";
import { PrometheusModule } from "@willsoto/nestjs-prometheus";
import { CheckoutController } from "./checkout.controller";
import type { Settings } from "./config";
import { PaymentStore } from "./db.service";
import { GatewayClient } from "./gateway.client";
import { metricProviders } from "./metrics";
import { PaymentService } from "./payment.service";
import { SETTINGS } from "./settings";

@Module({})
export class AppModule {
  static with(settings: Settings): DynamicModule {
    return {
      module: AppModule,
      // GET /metrics, with prom-client's default metrics (process_*, nodejs_*)
      imports: [PrometheusModule.register({ path: "/metrics", defaultMetrics: { enabled: true } })],
      controllers: [CheckoutController],
      providers: [{ provide: SETTINGS, useValue: settings }, ...metricProviders, PaymentStore, GatewayClient, PaymentService],
    };
  }
}
