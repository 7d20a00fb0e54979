import React, { useMemo, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { faro, initializeFaro, getWebInstrumentations } from '@grafana/faro-web-sdk';
import { TracingInstrumentation } from '@grafana/faro-web-tracing';
import { config } from './config.js';
import { CheckoutButton } from './CheckoutButton.jsx';

const METHODS = ['visa', 'paypal', 'amex', 'crypto'];
const CART = {
  items: [
    { sku: 'SKU-MUG', name: 'Mug', quantity: 2, unit_price: '9.50' },
    { sku: 'SKU-TEE', name: 'T-shirt', quantity: 1, unit_price: '81.00' },
  ],
  amount: '100.00',
  currency: 'USD',
};

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

if (config.collectorUrl) {
  initializeFaro({
    url: `${config.collectorUrl}/collect`,
    app: config.app,
    // every click counts (the SDK drops an event equal to the one just before by default)
    dedupe: false,
    instrumentations: [
      ...getWebInstrumentations(),
      new TracingInstrumentation({
        instrumentationOptions: {
          // the API is another origin: send it the traceparent (CORS lets it through)
          propagateTraceHeaderCorsUrls: config.apiUrl ? [new RegExp(`^${escapeRegExp(config.apiUrl)}`)] : [],
        },
      }),
    ],
  });
}

// For a shopper that leaves the page at once (the browser shoppers): hand the spans
// the tracer still batches (1 s) to Faro's transport now.
window.paychaosFlush = async () => {
  const provider = faro.api?.getOTEL()?.trace.getTracerProvider();
  const delegate = provider?.getDelegate ? provider.getDelegate() : provider;
  if (delegate?.forceFlush) await delegate.forceFlush();
  return true;
};

function Checkout() {
  const params = useMemo(() => new URLSearchParams(window.location.search), []);
  const initial = METHODS.includes(params.get('method')) ? params.get('method') : 'visa';
  const forceError = params.get('force_error') === '1';
  const [method, setMethod] = useState(initial);
  const [result, setResult] = useState(null);

  return (
    <main>
      <h1>Checkout</h1>
      <table>
        <tbody>
          {CART.items.map((item) => (
            <tr key={item.sku}>
              <td>{item.name}</td>
              <td>{item.quantity} × {item.unit_price}</td>
            </tr>
          ))}
          <tr><td><b>Total</b></td><td><b>{CART.amount} {CART.currency}</b></td></tr>
        </tbody>
      </table>
      <label>
        Payment method{' '}
        <select id="method" value={method} onChange={(e) => setMethod(e.target.value)}>
          {METHODS.map((m) => <option key={m} value={m}>{m}</option>)}
        </select>
      </label>
      <p><CheckoutButton method={method} cart={CART} forceError={forceError} onResult={setResult} /></p>
      <p id="status" data-outcome={result?.outcome ?? ''} data-trace-id={result?.traceId ?? ''}
         data-payment-id={result?.paymentId ?? ''} data-status={result?.status ?? ''}
         data-key={result?.key ?? ''} data-amount={CART.amount} data-currency={CART.currency}
         data-method={method}>
        {result ? `${result.outcome}${result.paymentId ? ` (${result.paymentId})` : ''}${result.error ? `: ${result.error}` : ''}` : ''}
      </p>
    </main>
  );
}

createRoot(document.getElementById('root')).render(<Checkout />);
