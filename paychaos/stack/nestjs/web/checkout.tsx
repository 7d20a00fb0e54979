// The shop's checkout page (React) with the strategy's CheckoutButton and the Grafana Faro
// Web SDK: page views, web vitals, the `click_payment_button` event (method, cart_value),
// errors with their context (method, screen), and tracing, so the browser's fetch of
// POST /api/checkout carries a traceparent and joins the backend's trace. Faro pushes to
// the URL the server puts in window.PAYCHAOS_SHOP (the collector's /collect, or Alloy's
// faro.receiver).
import { faro, getWebInstrumentations, initializeFaro } from "@grafana/faro-web-sdk";
import { TracingInstrumentation } from "@grafana/faro-web-tracing";
import React, { useState } from "react";
import { createRoot } from "react-dom/client";

interface ShopConfig {
  faroUrl: string;
  appName: string;
  version: string;
}

const config = (window as unknown as { PAYCHAOS_SHOP: ShopConfig }).PAYCHAOS_SHOP;

initializeFaro({
  url: config.faroUrl,
  app: { name: config.appName, version: config.version },
  instrumentations: [...getWebInstrumentations({ captureConsole: false }), new TracingInstrumentation()],
  batching: { sendTimeout: 250 },
});

const CART = {
  items: [{ sku: "SKU-MUG", name: "Mug", quantity: 2, unit_price: "25.00" }, { sku: "SKU-TEE", name: "T-shirt", quantity: 1, unit_price: "50.00" }],
  amount: "100.00",
  currency: "USD",
};

const DETAILS: Record<string, Record<string, string>> = {
  visa: { card_token: "tok_visa_4242abcd", last4: "4242" },
  amex: { card_token: "tok_amex_0005abcd", last4: "0005" },
  paypal: { payer_email: "shopper@example.com" },
  crypto: { wallet: "0x52908400098527886E0F7030069857D2E4169EE7", network: "ethereum" },
};

/** POST /api/checkout; throws an Error naming the answer when the payment is not charged. */
async function pay(method: string): Promise<{ id: string; status: string }> {
  const key = `web-${crypto.randomUUID()}`;
  const body = {
    order_id: `ord_${key.slice(4, 16)}`,
    customer: { id: "cus_browser", email: "shopper@example.com" },
    ...CART,
    method,
    payment: DETAILS[method],
  };
  const resp = await fetch("/api/checkout", {
    method: "POST",
    headers: { "Content-Type": "application/json", "Idempotency-Key": key },
    body: JSON.stringify(body),
  });
  const answer = await resp.json();
  if (resp.status !== 201) {
    const err = new Error(`payment ${resp.status}: ${answer.title ?? answer.status}`);
    err.name = "PaymentError";
    throw err;
  }
  return answer;
}

function CheckoutButton({ method, onResult }: { method: string; onResult: (text: string) => void }) {
  const handlePay = async () => {
    // 1. the click, as a RUM event
    faro.api.pushEvent("click_payment_button", { method, cart_value: CART.amount });
    try {
      const payment = await pay(method);
      onResult(`paid: ${payment.status} (${payment.id})`);
    } catch (err) {
      // 2. the error, with its context
      faro.api.pushError(err as Error, { context: { method, screen: "checkout" } });
      onResult(`failed: ${(err as Error).message}`);
    }
  };
  return (
    <button id={`pay-${method}`} onClick={() => void handlePay()}>
      Pay with {method}
    </button>
  );
}

function Checkout() {
  const [result, setResult] = useState("");
  return (
    <main>
      <h1>Checkout</h1>
      <p id="cart">Cart: 2 × Mug, 1 × T-shirt, {CART.amount} {CART.currency}</p>
      {Object.keys(DETAILS).map((m) => (
        <CheckoutButton key={m} method={m} onResult={setResult} />
      ))}
      <button
        id="break"
        onClick={() => {
          // a JS bug in the page: thrown from an event handler, caught by Faro's error handler
          // and pushed again with the context the strategy asks for
          try {
            (undefined as unknown as { total: () => void }).total();
          } catch (err) {
            faro.api.pushError(err as Error, { context: { method: "visa", screen: "checkout" } });
            setResult("failed: the page broke");
          }
        }}
      >
        Break the page
      </button>
      <p id="result">{result}</p>
    </main>
  );
}

createRoot(document.getElementById("root") as HTMLElement).render(<Checkout />);
