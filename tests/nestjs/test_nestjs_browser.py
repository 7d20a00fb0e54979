"""The checkout page with the Faro Web SDK, in a real headless Chromium, against NestJS.

A click on the CheckoutButton yields one trace from the browser's fetch through NestJS
to the INSERT in PostgreSQL; ``click_payment_button`` is stored with ``method`` and
``cart_value``; a JS error in the page arrives with its context (``method``, ``screen``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from paychaos.contracts.signals import RumQuery, Span, SpanQuery
from paychaos.stack.collector.client import CollectorClient
from tests.browser import Browser
from tests.live_stack import LiveStack

pytestmark = pytest.mark.integration
T = TypeVar("T")


def _until(what: str, probe: Callable[[], list[T]], timeout_s: float = 20.0) -> list[T]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout_s:g}s: {what}")


def test_a_click_in_the_browser_is_one_trace_down_to_postgres(
    nest_stack: LiveStack, tmp_path: Path
) -> None:
    collector = CollectorClient(nest_stack.urls["collector"])
    since = time.time()

    def browser_trace() -> list[Span]:
        roots = collector.find_spans(
            SpanQuery(service="payment-api", name="POST /api/checkout", since_unix_s=since)
        )
        for root in roots:
            spans = collector.get_trace(root.trace_id)
            services = {s.service for s in spans}
            if (
                "payment-api" in services
                and len(services) > 1
                and any(s.name.startswith("pg.query:INSERT") for s in spans)
            ):
                browser = [s for s in spans if s.service not in ("payment-api", "payment-gateway")]
                if browser:
                    return spans
        return []

    with Browser(tmp_path) as page:
        page.goto(nest_stack.urls["api"] + "/shop")
        page.wait("!!document.getElementById('pay-amex')", 20, "the React page rendered")
        page.click("#pay-amex")
        result = page.wait(
            "document.getElementById('result').textContent", 20, "the checkout's answer"
        )
        assert result.startswith(("paid: succeeded", "paid: declined", "failed: payment 402")), (
            result
        )
        page.click("#break")
        page.wait("document.getElementById('result').textContent.includes('broke')", 10)

        clicks = _until(
            "click_payment_button stored",
            lambda: collector.find_rum(
                RumQuery(kind="event", name="click_payment_button", since_unix_s=since)
            ),
        )
        # still in the browser: Faro sends its batches every 250 ms, a closed page sends none
        errors = _until(
            "the page's error with its context",
            lambda: [
                e
                for e in collector.find_rum(RumQuery(kind="exception", since_unix_s=since))
                if e.attributes.get("screen") == "checkout"
            ],
        )
        spans = _until("one trace from the browser's fetch to the INSERT", browser_trace)
    assert clicks[0].attributes.get("method") == "amex", clicks[0]
    assert clicks[0].attributes.get("cart_value") == "100.00", clicks[0]
    assert errors[0].attributes.get("method") == "visa", errors[0]

    by_id = {s.span_id: s for s in spans}
    server = next(s for s in spans if s.name == "POST /api/checkout")
    fetch = by_id.get(server.parent_span_id or "")
    # the browser's fetch span (Faro's tracing, service = the Faro app's name) is the parent
    assert fetch is not None and fetch.service == "shop", [(s.service, s.name) for s in spans]
    assert fetch.kind == "client", fetch
    insert = next(s for s in spans if s.name.startswith("pg.query:INSERT"))
    assert insert.parent_span_id == server.span_id
