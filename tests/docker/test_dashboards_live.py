"""Every dashboard query (panels and the chaos annotation) against a live Prometheus.

The embedded stack (real Prometheus scraping every second) gets checkout
traffic (``paychaos.loadgen.drive``), Faro RUM payloads from the simulated
browser's :class:`~paychaos.traffic.rum.Journey`, and one fault (a proxy
toxic, so that ``chaos_fault_active`` is 1); then each query must run without
error and return at least one series.
"""

from __future__ import annotations

import asyncio
import random
import time
import urllib.request

import pytest
from dashboard_queries import dashboard_queries

from paychaos.chaos.proxy.client import ProxyClient
from paychaos.loadgen import drive
from paychaos.stack.embedded import EmbeddedStack, StackConfig, StackPorts
from paychaos.stack.monitoring.promapi import PrometheusClient
from paychaos.traffic.rum import Journey

pytestmark = pytest.mark.integration


def push_rum(collector_url: str, journeys: int) -> None:
    rng = random.Random(3)
    for i in range(journeys):
        method = ("visa", "paypal", "amex", "crypto")[i % 4]
        journey = Journey.start(rng, session_id=f"s{i}", page_url="https://shop.example/")
        journey.page_view(rng, "checkout")
        journey.event("click_payment_button", {"method": method, "cart_value": "100.00"})
        journey.exception(rng, method)
        request = urllib.request.Request(
            collector_url + "/collect",
            data=journey.payload(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status in (200, 202, 204)


def test_every_dashboard_query_returns_data(tmp_path):
    cfg = StackConfig(
        state_dir=tmp_path,
        ports=StackPorts.auto(),
        scrape_interval_s=1.0,
        gateway_latency_scale=0.05,
    )
    with EmbeddedStack(cfg) as stack:
        proxy = ProxyClient(stack.urls["proxy"])
        proxy.add_toxic("postgres", "latency", {"latency": 1}, ttl_s=120, name="dashboards")
        push_rum(stack.urls["collector"], 20)
        result = asyncio.run(drive(stack.urls["api"], total=300, concurrency=8))
        assert result.sent == 300
        push_rum(stack.urls["collector"], 20)
        prom = PrometheusClient(stack.urls["prometheus"], timeout_s=10)
        queries = dashboard_queries()
        deadline = time.monotonic() + 40
        empty: list[str] = []
        while True:
            empty = []
            for where, expr in queries:
                if not prom.query(expr):  # StackError (a query error) fails the test
                    empty.append(f"{where}: {expr}")
            if not empty or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert not empty, "queries returned nothing:\n" + "\n".join(empty)
