"""The stack's checkout page (``--webapp``: React + the Faro Web SDK) in a real headless
Chromium, against the NestJS service (``--app nestjs``): the same page and build that
drive paychaos' Python API (tests/webapp), since both APIs take the same body.

A click on the CheckoutButton yields ONE trace from the browser's ``checkout`` span and
its ``fetch`` through NestJS's server span to the ``INSERT`` in PostgreSQL (Node's pg
span); ``click_payment_button`` is stored with ``method`` and ``cart_value`` in that
trace. (A JS error forced on the page never reaches an API: tests/webapp checks it
arrives with its context, for either API.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import Browser
from tests.live_stack import LiveStack, live_stack
from tests.nestjs.conftest import require_nestjs
from tests.webapp.test_checkout_page import _get, _pay, _poll, _preflight, _require_page, _rum

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    require_nestjs()
    _require_page()
    with live_stack(
        tmp_path_factory.mktemp("nest-web-stack"),
        app="nestjs",
        webapp=True,
        with_monitoring=False,
        gateway_latency_scale=0.05,
    ) as live:
        yield live


def test_a_click_is_one_trace_from_the_browser_through_nestjs_to_the_insert(
    stack: LiveStack, tmp_path: Path
) -> None:
    web, collector = stack.urls["webapp"], stack.urls["collector"]
    with Browser(tmp_path) as page:
        status = _pay(page, f"{web}/?method=amex")
        # the gateway simulator declines a share of charges: 402 is a whole checkout too
        assert status["outcome"] in ("succeeded", "declined"), status
        trace_id = status["traceId"]

        def whole_trace() -> list[dict[str, Any]] | None:
            spans = list(_get(f"{collector}/api/traces/{trace_id}")["results"])
            browser = any(
                s["service"] == "shop-frontend" and s["name"] == "checkout" for s in spans
            )
            insert = any(s["name"].startswith("pg.query:INSERT") for s in spans)
            return spans if browser and insert else None

        spans = _poll(f"trace {trace_id} from the browser to NestJS's INSERT", whole_trace)
    by_id = {s["span_id"]: s for s in spans}
    insert = next(s for s in spans if s["name"].startswith("pg.query:INSERT"))
    server = by_id[insert["parent_span_id"]]
    assert (server["service"], server["kind"], server["name"]) == (
        "payment-api",
        "server",
        "POST /api/checkout",
    )
    fetch = by_id[server["parent_span_id"]]  # the browser's fetch is the server span's parent
    assert (fetch["service"], fetch["kind"]) == ("shop-frontend", "client"), fetch
    assert fetch["attributes"]["url.full"] == f"{stack.urls['api']}/api/checkout"
    root = by_id[fetch["parent_span_id"]]
    assert (root["service"], root["name"], root.get("parent_span_id")) == (
        "shop-frontend",
        "checkout",
        None,
    )

    clicks = _poll(
        "click_payment_button for amex",
        lambda: [
            r
            for r in _rum(collector, kind="event", name="click_payment_button")
            if r["attributes"].get("method") == "amex"
        ],
    )
    assert clicks[0]["attributes"]["cart_value"] == "100.00"
    assert clicks[0]["trace_id"] == trace_id


def test_nestjs_lets_the_page_send_its_traceparent(stack: LiveStack) -> None:
    allowed = _preflight(
        f"{stack.urls['api']}/api/checkout",
        stack.urls["webapp"],
        "content-type,idempotency-key,traceparent",
    )
    assert allowed["access-control-allow-origin"] == stack.urls["webapp"]
    assert {h.strip().lower() for h in allowed["access-control-allow-headers"].split(",")} >= {
        "content-type",
        "idempotency-key",
        "traceparent",
    }
    other = _preflight(f"{stack.urls['api']}/api/checkout", "http://127.0.0.1:1", "traceparent")
    assert "access-control-allow-origin" not in other
