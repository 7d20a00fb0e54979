"""The shopper: a Locust ``FastHttpUser`` that browses, fills a cart and pays, through the
target's checkout adapter.

Who buys what, how they pay, the retries, the RUM and the ledger line come
from the shared shopper model (:mod:`paychaos.traffic.model`); this module
is the Locust (gevent) machinery around it.

Closed model (``-u N``): each task run is one visit — page views with think
times (client-side: RUM page views and web vitals; ``--browse-path`` adds a
GET per page for server load), add to cart, abandonment at
``--abandon-rate``, the checkout page, the ``click_payment_button`` event,
sometimes a JS exception instead of the payment (``--js-error-rate``), then
the checkout request the target's adapter describes (paychaos' own ``POST
/api/checkout`` by default) inside a ``checkout`` client span (W3C
``traceparent``). An answer the adapter calls *retry*, or none it can
classify (a timeout), is retried with the SAME idempotency key (as a real
frontend does; never double-charges); each failed attempt is a
``PaymentError`` in the visit's RUM. Every checkout goes to the client
ledger and the business stats; the visit's RUM goes to the collector as one
Faro body. Locust's stats name the checkout by the adapter's method and path
(``POST /api/checkout``; ``PUT /v2/orders/{key}/payment`` for a foreign
API), retries as ``... [retry]``.

Open model (``--arrival-rate R``): each task run claims the next arrival of
the shared Poisson schedule, sleeps until it is due and runs the checkout
part of the visit at once (a shopper arriving at checkout).

The hot path is kept cheap (``bench/bench_traffic.py``: a shopper keeps the
request rate of a minimal ``FastHttpUser``): purchases are drawn from
pre-built pools, the built-in body is pre-serialised (only the ``order_id``
is spliced in), the request goes straight to the user's geventhttpclient
connection pool and is reported with Locust's ``request`` event (what
``catch_response`` does, without its per-request objects), the adapter's
verdict for a plain status is a look-up and the payment id is sliced out of
a compact answer, the span is a tuple exported in batches, and ledger lines
and RUM bodies leave from background greenlets.
"""

from __future__ import annotations

import random
import time
from typing import Any

import gevent
from geventhttpclient import URL
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError
from locust import FastHttpUser, task
from locust.exception import CatchResponseError

from paychaos.traffic import model
from paychaos.traffic.catalog import geometric
from paychaos.traffic.model import Payment, Purchase
from paychaos.traffic.rum import Journey
from paychaos.traffic.runtime import TrafficRuntime, runtime_of
from paychaos.traffic.tracing import ClientSpan, new_ids, traceparent

ARRIVAL_TYPE = "ARRIVAL"
ARRIVAL_NAME = "open model: arrivals (ms late)"
BROWSE_PAGES = ("home", "search", "category", "product", "product", "product")
# What the transport can raise (Locust's FastHttpSession counts the same ones as failures).
TRANSPORT_ERRORS = (OSError, gevent.Timeout, HTTPConnectionClosed, HTTPParseError)
#: Verdicts Locust counts as successes (a decline is a business outcome, not an error).
OK_VERDICTS = frozenset({"charged", "declined"})


class Shopper(FastHttpUser):
    """A realistic e-commerce shopper (see the module docstring)."""

    connection_timeout = 5.0
    network_timeout = 10.0
    insecure = False

    rt: TrafficRuntime
    rng: random.Random

    def __init__(self, environment: Any) -> None:
        self.rt = runtime_of(environment)
        self.network_timeout = self.rt.settings.request_timeout_s
        super().__init__(environment)
        self.rng = random.Random(self.rt.rng.getrandbits(64))
        self._client: Any = None  # the checkout API's geventhttpclient HTTPClient (user's pool)
        self._request_event = environment.events.request
        self._browse_path = self.rt.settings.browse_path

    def wait_time(self) -> float:
        """Gap between two visits (closed model); the open model sleeps on its schedule."""
        if self.rt.schedule is not None:
            return 0.0
        return self.rng.lognormvariate(1.6, 0.8) * self.rt.settings.think_time_scale

    def _think(self, median_s: float) -> None:
        gevent.sleep(
            median_s * self.rng.lognormvariate(0.0, 0.6) * self.rt.settings.think_time_scale
        )

    @task
    def visit(self) -> None:
        if self.rt.schedule is not None:
            self._arrive()
        else:
            self._visit()

    # -- closed model ---------------------------------------------------------------

    def _visit(self) -> None:
        rt, rng = self.rt, self.rng
        purchase = rt.model.purchase(rng)
        journey = self._journey(purchase)
        thinking = rt.settings.think_time_scale > 0
        for _ in range(geometric(rng, 0.35)):
            self._page(journey, BROWSE_PAGES[int(rng.random() * len(BROWSE_PAGES))])
            if thinking:
                self._think(4.0)
        if journey is not None:
            model.add_to_cart(journey, purchase)
        self._page(journey, "cart")
        if thinking:
            self._think(3.0)
        if rng.random() < rt.settings.abandon_rate:
            rt.business.abandoned += 1
            if journey is not None:
                model.abandon(journey, purchase)
                self._send_rum(journey)
            return
        self._page(journey, "checkout")
        if thinking:
            self._think(8.0)  # filling in the payment form
        self._pay(journey, purchase)

    # -- open model -----------------------------------------------------------------

    def _arrive(self) -> None:
        schedule = self.rt.schedule
        assert schedule is not None
        arrival = schedule.claim()
        delay = arrival.due - time.monotonic()
        if delay > 0:
            gevent.sleep(delay)
        now = time.monotonic()
        if not schedule.started(arrival, now):
            return
        self._request_event.fire(
            request_type=ARRIVAL_TYPE,
            name=ARRIVAL_NAME,
            response_time=max(0.0, (now - arrival.due) * 1000),
            response_length=0,
            exception=None,
            context={},
        )
        purchase = self.rt.model.purchase(self.rng)
        journey = self._journey(purchase)
        self._page(journey, "checkout")
        self._pay(journey, purchase)

    # -- shared ---------------------------------------------------------------------

    def _journey(self, purchase: Purchase) -> Journey | None:
        """The visit's RUM, or None without RUM (nothing is collected then)."""
        if self.rt.rum is None:
            return None
        session_id = f"{self.rt.key_prefix}-s{self.rng.getrandbits(32):08x}"
        return model.visit(self.rng, purchase, session_id)

    def _page(self, journey: Journey | None, page: str) -> None:
        if journey is not None:
            journey.page_view(self.rng, page)
        if self._browse_path:
            self.client.get(self._browse_path, name=f"browse {page}")

    def _send_rum(self, journey: Journey) -> None:
        if self.rt.rum is not None:
            self.rt.rum.submit(journey)

    def _pay(self, journey: Journey | None, purchase: Purchase) -> None:
        rt, rng = self.rt, self.rng
        if rng.random() < rt.settings.js_error_rate:
            rt.business.js_errors += 1
            if journey is not None:
                model.js_error(journey, rng, purchase)  # the payment never leaves
                self._send_rum(journey)
            return
        payment = Payment(rt.client, purchase.cart(rt.next_key()), rt.retry)
        ids: tuple[str, str] | None = None
        if rt.tracer.enabled:
            ids = new_ids(rng)
            headers = payment.request.headers  # a fresh dict per request: ours to extend
            assert isinstance(headers, dict)
            headers["traceparent"] = traceparent(*ids)
        if journey is not None:
            model.click_payment(journey, purchase, trace=ids)
        start_ns = time.time_ns()
        started = time.perf_counter()
        try:
            self._send_with_retries(payment, journey)
        except gevent.GreenletExit:
            # Locust stopped this shopper mid-payment: the outcome is unknown to the
            # client (the API may have charged), and the ledger must say so.
            payment.verdict = "unknown"
            self._record(payment, ids, start_ns, started)
            raise
        outcome = self._record(payment, ids, start_ns, started)
        if journey is not None:
            model.payment_result(journey, rng, purchase.method, outcome, trace=ids)
            self._send_rum(journey)

    def _record(
        self, payment: Payment, ids: tuple[str, str] | None, start_ns: int, started: float
    ) -> str:
        """The checkout's ledger line, business count and client span; returns the outcome."""
        rt = self.rt
        elapsed_s = time.perf_counter() - started
        end_ns = start_ns + int(elapsed_s * 1e9)
        entry = payment.ledger_entry(end_ns / 1e9, elapsed_s * 1000, ids[0] if ids else None)
        rt.ledger.write(entry)
        rt.business.record(entry.method, entry.outcome, entry.amount_cents, entry.attempts)
        if ids is not None:
            rt.tracer.end(
                ClientSpan(
                    ids[0],
                    ids[1],
                    start_ns,
                    end_ns,
                    entry.method,
                    entry.key,
                    entry.status,
                    entry.attempts,
                    entry.outcome,
                )
            )
        return entry.outcome

    def _send_with_retries(self, payment: Payment, journey: Journey | None) -> None:
        """Send until a final verdict or ``--max-attempts`` (same key; backoff with jitter)."""
        rt = self.rt
        name = rt.name
        while True:
            status = self._attempt(payment, name)
            if journey is not None and model.failed_attempt(status):
                model.attempt_failed(journey, payment.cart.method, status)
            if payment.done:
                return
            name = rt.retry_name
            gevent.sleep(payment.backoff_s(self.rng))

    def _attempt(self, payment: Payment, name: str) -> int:
        """Send the checkout request once, record the answer, report it; the status (0: none).

        Sent on the user's own geventhttpclient connection pool (its timeouts,
        TLS and keep-alive), without ``FastHttpSession``'s cookie jar and
        redirects: a checkout API answers a payment without redirecting. In
        Locust's stats, charged and declined are successes; any other verdict (a
        retry, an unknown answer, an invalid request) is a failure, as
        ``catch_response`` would record it.
        """
        rt, request = self.rt, payment.request
        client = self._client
        if client is None:
            pool = self.client.client.clientpool  # the user's pool: its timeouts and TLS
            client = self._client = pool.get_client(URL(request.url))
        headers = request.headers
        if self.client.auth_header:  # credentials in --host, as FastHttpSession sends them
            headers = {**headers, "Authorization": self.client.auth_header}
        start_time = time.time()
        started = time.perf_counter()
        status, content, exception = 0, b"", None
        try:
            response = client.request(
                request.method, request.url[rt.origin_len :], body=request.body, headers=headers
            )
            content = response.read()
            status = response.status_code
        except TRANSPORT_ERRORS as exc:
            exception = CatchResponseError(f"transport error: {type(exc).__name__}: {exc}")
        elapsed_ms = (time.perf_counter() - started) * 1000
        verdict = payment.answer(status, content)
        if exception is None and verdict not in OK_VERDICTS:
            exception = CatchResponseError(f"HTTP {status}")
        self._request_event.fire(
            request_type=request.method,
            name=name,
            response_time=elapsed_ms,
            response_length=len(content),
            response=None,
            context={},
            exception=exception,
            start_time=start_time,
            url=request.url,
        )
        return status
