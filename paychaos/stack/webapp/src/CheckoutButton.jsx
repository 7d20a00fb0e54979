// The seed's CheckoutButton (observability-strategy.md, 5.2): a click pushes the
// `click_payment_button` event (method, cart_value); a failure before or during the
// call to the backend is pushed as an error with its context (method, screen).
import React, { useState } from 'react';
import { faro } from '@grafana/faro-web-sdk';
import { pay } from './api.js';

export const SCREEN = 'checkout';

function outcomeOf(status) {
  if (status >= 200 && status < 300) return 'succeeded';
  if (status === 402) return 'declined';
  if (status >= 400 && status < 500 && status !== 409) return 'rejected';
  return 'unknown';
}

export function CheckoutButton({ method, cart, forceError, onResult }) {
  const [busy, setBusy] = useState(false);

  const handlePay = async () => {
    setBusy(true);
    // one span around the payment, so the click event, the fetch and the backend share
    // one trace (the fetch span is its child; its traceparent goes to the API)
    const tracer = faro.api.getOTEL()?.trace.getTracer('checkout');
    const run = async (span) => {
      const traceId = span?.spanContext().traceId;
      // 1. the seed's custom EVENT (RUM): every click attempt, with method and cart value
      faro.api.pushEvent('click_payment_button', {
        method: method,
        cart_value: cart.amount,
      });
      let seen = { status: 0, paymentId: null, key: '' }; // what the API answered, if it did
      try {
        if (forceError) {
          // ?force_error=1: a real JS error on the checkout path, as a broken widget makes
          const widget = undefined;
          widget.token.toString();
        }
        const answer = await pay(method, cart);
        seen = answer;
        const outcome = outcomeOf(answer.status);
        faro.api.pushEvent('payment_result', { method: method, outcome: outcome });
        if (answer.status === 0 || answer.status >= 500) {
          throw new Error(`checkout attempt failed with HTTP ${answer.status}`);
        }
        onResult({ ...seen, outcome, traceId });
      } catch (err) {
        // 2. the exact ERROR with context when JS fails
        faro.api.pushError(err instanceof Error ? err : new Error(String(err)), {
          context: { method: method, screen: SCREEN },
        });
        onResult({ ...seen, outcome: 'error', error: String(err), traceId });
      } finally {
        span?.end();
        setBusy(false);
      }
    };
    if (tracer) {
      await tracer.startActiveSpan('checkout', (span) => run(span));
    } else {
      await run(null);
    }
  };

  return (
    <button id="pay" className="pay" disabled={busy} onClick={handlePay}>
      {busy ? 'Paying…' : `Pay ${cart.amount} ${cart.currency} with ${method}`}
    </button>
  );
}
