"""The shopper: a Locust ``FastHttpUser`` that browses, fills a cart and pays.

Closed model (``-u N``): each task run is one visit — page views with think
times (client-side: RUM page views and web vitals; ``--browse-path`` adds a
GET per page for server load), add to cart, abandonment at
``--abandon-rate``, the checkout page, the ``click_payment_button`` event,
sometimes a JS exception instead of the payment (``--js-error-rate``), then
``POST /api/checkout`` inside a ``checkout`` client span (W3C
``traceparent``). A 502/503/504/409 or a timeout is retried with the SAME
``Idempotency-Key`` (as a real frontend does; never double-charges). Every
checkout goes to the client ledger and the business stats; the visit's RUM
goes to the collector as one Faro body.

Open model (``--arrival-rate R``): each task run claims the next arrival of
the shared Poisson schedule, sleeps until it is due and runs the checkout
part of the visit at once (a shopper arriving at checkout).

The hot path is kept cheap (``bench/bench_traffic.py``: a shopper keeps the
request rate of a minimal ``FastHttpUser``): checkout bodies come
pre-serialised from :class:`~paychaos.traffic.catalog.BodyPool` (only the
``order_id`` is spliced in), the ``POST`` goes straight to the user's
geventhttpclient connection pool and is reported with Locust's ``request``
event (what ``catch_response`` does, without its per-request objects), the
payment id is sliced out of the answer, the span is a tuple exported in
batches, and ledger lines and RUM bodies leave from background greenlets.
"""

from __future__ import annotations

import functools
import random
import time
from typing import Any

import gevent
import orjson
from geventhttpclient import URL
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError
from locust import FastHttpUser, task
from locust.exception import CatchResponseError

from paychaos.traffic.catalog import CheckoutDraft, geometric
from paychaos.traffic.ledger import LedgerEntry
from paychaos.traffic.rum import Journey
from paychaos.traffic.runtime import TrafficRuntime, runtime_of
from paychaos.traffic.tracing import ClientSpan, new_ids, traceparent

CHECKOUT_PATH = "/api/checkout"
RETRY_NAME = "/api/checkout [retry]"
ARRIVAL_TYPE = "ARRIVAL"
ARRIVAL_NAME = "open model: arrivals (ms late)"
FINAL = {201: "succeeded", 402: "declined", 400: "rejected", 422: "rejected"}
BROWSE_PAGES = ("home", "search", "category", "product", "product", "product")
# What the transport can raise (Locust's FastHttpSession counts the same ones as failures).
TRANSPORT_ERRORS = (OSError, gevent.Timeout, HTTPConnectionClosed, HTTPParseError)


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
        self._checkout: Any = None  # (geventhttpclient HTTPClient, request URI, full URL)
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
        draft = rt.bodies.draw(rng, self._choose_method(), rt.settings.decline_card_rate)
        journey = self._journey(draft)
        thinking = rt.settings.think_time_scale > 0
        for _ in range(geometric(rng, 0.35)):
            self._page(journey, BROWSE_PAGES[int(rng.random() * len(BROWSE_PAGES))])
            if thinking:
                self._think(4.0)
        if journey is not None:
            journey.event_json("add_to_cart", draft.cart_json)
        self._page(journey, "cart")
        if thinking:
            self._think(3.0)
        if rng.random() < rt.settings.abandon_rate:
            rt.business.abandoned += 1
            if journey is not None:
                journey.event("cart_abandoned", {"cart_value": draft.cart_value})
                self._send_rum(journey)
            return
        self._page(journey, "checkout")
        if thinking:
            self._think(8.0)  # filling in the payment form
        self._pay(journey, draft)

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
        rt = self.rt
        draft = rt.bodies.draw(self.rng, self._choose_method(), rt.settings.decline_card_rate)
        journey = self._journey(draft)
        self._page(journey, "checkout")
        self._pay(journey, draft)

    # -- shared ---------------------------------------------------------------------

    def _journey(self, draft: CheckoutDraft) -> Journey | None:
        """The visit's RUM, or None without RUM (nothing is collected then)."""
        if self.rt.rum is None:
            return None
        return Journey.start(
            self.rng,
            session_id=f"{self.rt.key_prefix}-s{self.rng.getrandbits(32):08x}",
            page_url="https://shop.example/",
            attributes=draft.session_attributes,
        )

    def _page(self, journey: Journey | None, page: str) -> None:
        if journey is not None:
            journey.page_view(self.rng, page)
        if self._browse_path:
            self.client.get(self._browse_path, name=f"browse {page}")

    def _send_rum(self, journey: Journey) -> None:
        if self.rt.rum is not None:
            self.rt.rum.submit(journey)

    def _choose_method(self) -> str:
        return self.rng.choices(self.rt.methods, cum_weights=self.rt.method_cum)[0]

    def _pay(self, journey: Journey | None, draft: CheckoutDraft) -> None:
        rt, rng = self.rt, self.rng
        method = draft.method
        if rng.random() < rt.settings.js_error_rate:
            rt.business.js_errors += 1
            if journey is not None:
                journey.event_json("click_payment_button", draft.click_json)
                journey.exception(rng, method)  # the broken button: the payment never leaves
                self._send_rum(journey)
            return
        key = rt.next_key()
        body = draft.body("ord_" + key[4:])
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        ids: tuple[str, str] | None = None
        if rt.tracer.enabled:
            ids = new_ids(rng)
            headers["traceparent"] = traceparent(*ids)
        if journey is not None:
            journey.event_json("click_payment_button", draft.click_json, trace=ids)
        start_ns = time.time_ns()
        started = time.perf_counter()
        try:
            status, payment_id, attempts = self._post_with_retries(body, headers)
        except gevent.GreenletExit:
            # Locust stopped this shopper mid-payment: the outcome is unknown to the
            # client (the API may have charged), and the ledger must say so.
            self._record(key, draft, 0, "unknown", None, 1, ids, start_ns, started)
            raise
        outcome = FINAL.get(status, "unknown")
        self._record(key, draft, status, outcome, payment_id, attempts, ids, start_ns, started)
        if journey is not None:
            journey.event_json("payment_result", _result_json(method, outcome), trace=ids)
            if outcome == "succeeded":
                journey.page_view(rng, "confirmation")
            self._send_rum(journey)

    def _record(
        self,
        key: str,
        draft: CheckoutDraft,
        status: int,
        outcome: str,
        payment_id: str | None,
        attempts: int,
        ids: tuple[str, str] | None,
        start_ns: int,
        started: float,
    ) -> None:
        """The checkout's ledger line, business count and client span."""
        rt = self.rt
        elapsed_s = time.perf_counter() - started
        end_ns = start_ns + int(elapsed_s * 1e9)
        rt.ledger.write(
            LedgerEntry(
                ts=end_ns / 1e9,
                key=key,
                method=draft.method,
                amount_cents=draft.amount_cents,
                currency=draft.currency,
                attempts=attempts,
                outcome=outcome,
                status=status,
                payment_id=payment_id,
                trace_id=ids[0] if ids else None,
                latency_ms=round(elapsed_s * 1000, 1),
            )
        )
        rt.business.record(draft.method, outcome, draft.amount_cents, attempts)
        if ids is not None:
            rt.tracer.end(
                ClientSpan(
                    ids[0], ids[1], start_ns, end_ns, draft.method, key, status, attempts, outcome
                )
            )

    def _post_with_retries(
        self, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str | None, int]:
        """POST until a final answer or ``--max-attempts``; returns (status, payment_id, attempts)."""
        max_attempts = self.rt.settings.max_attempts
        status, payment_id, attempt = 0, None, 0
        while attempt < max_attempts:
            attempt += 1
            status, content = self._post(
                body, headers, CHECKOUT_PATH if attempt == 1 else RETRY_NAME
            )
            payment_id = _payment_id(content) or payment_id
            if status in FINAL:
                break
            if attempt < max_attempts:  # backoff with jitter, like a frontend's retry
                gevent.sleep(min(2.0, 0.25 * 2 ** (attempt - 1)) * self.rng.uniform(0.5, 1.5))
        return status, payment_id, attempt

    def _post(self, body: bytes, headers: dict[str, str], name: str) -> tuple[int, bytes]:
        """One ``POST /api/checkout``, reported to Locust; ``(status, body)``, status 0 on error.

        201 and 402 (a decline is a business outcome) count as successes; any
        other status or a transport error is a failure, as ``catch_response``
        would record it. Sent on the user's own geventhttpclient connection
        pool (its timeouts, TLS and keep-alive), without ``FastHttpSession``'s
        cookie jar and redirects: the payment API sets no cookie and answers
        a checkout without redirecting.
        """
        if self._checkout is None:
            url = URL(f"{self.client.base_url}{CHECKOUT_PATH}")
            pool = self.client.client.clientpool  # the user's pool: its timeouts and TLS
            self._checkout = (pool.get_client(url), url.request_uri, str(url))
        client, uri, full_url = self._checkout
        if self.client.auth_header:  # credentials in --host, as FastHttpSession sends them
            headers["Authorization"] = self.client.auth_header
        start_time = time.time()
        started = time.perf_counter()
        status, content, exception = 0, b"", None
        try:
            response = client.request("POST", uri, body=body, headers=headers)
            content = response.read()
            status = response.status_code
        except TRANSPORT_ERRORS as exc:
            exception = CatchResponseError(f"transport error: {type(exc).__name__}: {exc}")
        if exception is None and status not in (201, 402):
            exception = CatchResponseError(f"HTTP {status}")
        self._request_event.fire(
            request_type="POST",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=len(content),
            response=None,
            context={},
            exception=exception,
            start_time=start_time,
            url=full_url,
        )
        return status, content


@functools.lru_cache(maxsize=64)
def _result_json(method: str, outcome: str) -> bytes:
    return orjson.dumps({"method": method, "outcome": outcome})


_COMPACT_PAYMENT = b'{"id":"'


def _payment_id(content: bytes) -> str | None:
    """The payment id of an answer: a slice of the API's compact ``Payment``, else a parse."""
    if content.startswith(_COMPACT_PAYMENT):  # the API's answer: {"id":"...","status":...}
        end = content.find(b'"', len(_COMPACT_PAYMENT))
        if end > len(_COMPACT_PAYMENT) and b'"payment_id"' not in content:
            return content[len(_COMPACT_PAYMENT) : end].decode()
    if not content:
        return None
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    value = data.get("payment_id") or data.get("id")
    return str(value) if value else None
