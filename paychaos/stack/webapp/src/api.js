// The checkout call: POST {apiUrl}{checkoutPath} with an Idempotency-Key, in the body
// the Python payment API takes (paychaos/stack/api/models.py). A retry of the same
// click would reuse the key; the page sends one attempt per click.
import { config } from './config.js';

const PAYMENT = {
  visa: { card_token: 'tok_visa_4242', last4: '4242' },
  amex: { card_token: 'tok_amex_0005', last4: '0005' },
  paypal: { payer_email: 'shopper@example.com' },
  crypto: { wallet: '0x52908400098527886E0F7030069857D2E4169EE7', network: 'ethereum' },
};

function newKey() {
  return `web-${crypto.randomUUID()}`;
}

export async function pay(method, cart) {
  const key = newKey();
  const body = {
    order_id: `ord_${key.slice(4, 16)}`,
    customer: { id: 'cus_browser', email: 'shopper@example.com', name: 'Browser Shopper' },
    items: cart.items,
    amount: cart.amount,
    currency: cart.currency,
    method: method,
    payment: PAYMENT[method],
  };
  let response;
  try {
    response = await fetch(config.apiUrl + config.checkoutPath, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Idempotency-Key': key },
      body: JSON.stringify(body),
    });
  } catch (err) {
    return { status: 0, paymentId: null, key };
  }
  let paymentId = null;
  try {
    const answer = await response.json();
    paymentId = answer.id ?? answer.payment_id ?? null;
  } catch (err) {
    // an answer that is not JSON: the status says enough
  }
  return { status: response.status, paymentId, key };
}
