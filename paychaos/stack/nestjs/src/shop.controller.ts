// The shop's checkout page (web/checkout.tsx, bundled into dist/public by `npm run build`):
// GET /shop answers index.html with where Faro pushes ($PAYCHAOS_FARO_URL: the collector's
// /collect, or Alloy's faro.receiver); the bundle itself is a static asset under /shop/.
import { Controller, Get, Res as NestRes } from "@nestjs/common";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { sendJson, type Res } from "./http";
import { problem } from "./problem";

export const PUBLIC_DIR = join(__dirname, "public");
export const FARO_URL_ENV = "PAYCHAOS_FARO_URL";

function page(): string | null {
  const faroUrl = process.env[FARO_URL_ENV];
  const file = join(PUBLIC_DIR, "index.html");
  if (!faroUrl || !existsSync(file)) return null;
  const config = JSON.stringify({ faroUrl, appName: "shop", version: "v1.0" }).replace(/</g, "\\u003c");
  return readFileSync(file, "utf8").replace("__SHOP_CONFIG__", config);
}

@Controller()
export class ShopController {
  private readonly html = page();

  @Get("/shop")
  checkout(@NestRes() res: Res): void {
    if (this.html === null) {
      const p = problem(404, "no-shop-page", "No checkout page",
        `the page needs ${FARO_URL_ENV} (where Faro pushes) and the build (npm run build)`);
      return sendJson(res, 404, p.body, {}, true);
    }
    res.status(200).type("text/html").send(this.html);
  }
}
