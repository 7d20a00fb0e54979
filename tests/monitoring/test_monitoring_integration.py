"""Real Prometheus + Alertmanager with the generated configs and the project's rules.

A fake payment API (prometheus-client, in this process) makes paypal fail half
its payments; a tiny webhook receiver stands in for the collector. The test
waits (bounded) until PaymentErrorRatioHigh{method="paypal"} fires in
Prometheus and its notification reaches the webhook, then checks the seed's
bottomk query names amex, the least used method.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from subprocess import Popen
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, Metric

from paychaos.stack.monitoring import (
    AlertmanagerClient,
    AlertmanagerSettings,
    PrometheusClient,
    PrometheusSettings,
    ScrapeTarget,
    alertmanager_spec,
    prometheus_spec,
    render_alertmanager_config,
    render_prometheus_config,
    write_config,
)
from paychaos.stack.process import ProcessSpec
from paychaos.stack.service import free_port

pytestmark = pytest.mark.integration

# payments per second by (method, status): paypal fails half; amex is least used.
RATES = {
    ("visa", "success"): 8.0,
    ("visa", "declined"): 0.5,
    ("paypal", "success"): 3.0,
    ("paypal", "error"): 3.0,
    ("amex", "success"): 0.5,
    ("crypto", "success"): 2.0,
}
DEADLINE_S = 60.0


class PaymentsCollector:
    """shop_payments_total growing at RATES since start; all 12 series present."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def collect(self) -> Iterable[Metric]:
        elapsed = time.monotonic() - self.started
        family = CounterMetricFamily("shop_payments", "Payments", labels=["method", "status"])
        for method in ("visa", "paypal", "amex", "crypto"):
            for status in ("success", "declined", "error"):
                family.add_metric([method, status], RATES.get((method, status), 0.0) * elapsed)
        yield family


class WebhookReceiver:
    """Records Alertmanager webhook payloads POSTed to /alertmanager/webhook."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/alertmanager/webhook":
                    with receiver.lock:
                        receiver.payloads.append(json.loads(body))
                    self.send_response(200)
                else:
                    self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def notified(self, alertname: str, method: str) -> bool:
        with self.lock:
            return any(
                alert["status"] == "firing"
                and alert["labels"].get("alertname") == alertname
                and alert["labels"].get("method") == method
                for payload in self.payloads
                for alert in payload["alerts"]
            )


@pytest.fixture
def exporter_port() -> Iterator[int]:
    registry = CollectorRegistry()
    registry.register(PaymentsCollector())
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        receiver.thread.join(timeout=5)


@pytest.mark.usefixtures("prometheus_binary", "alertmanager_binary")
def test_paypal_failures_fire_an_alert_that_reaches_the_webhook(
    tmp_path: Path,
    exporter_port: int,
    webhook: WebhookReceiver,
    process_runner: Callable[[ProcessSpec], AbstractContextManager[Popen[bytes]]],
) -> None:
    prom_port, am_port = free_port(), free_port()
    am_config = write_config(
        render_alertmanager_config(
            AlertmanagerSettings(
                webhook_url=f"http://127.0.0.1:{webhook.port}/alertmanager/webhook"
            )
        ),
        tmp_path / "alertmanager.yml",
    )
    prom_config = write_config(
        render_prometheus_config(
            PrometheusSettings(
                targets=(
                    ScrapeTarget("payment-api", "127.0.0.1", exporter_port),
                    ScrapeTarget("prometheus", "127.0.0.1", prom_port),
                    ScrapeTarget("alertmanager", "127.0.0.1", am_port),
                ),
                alertmanager_port=am_port,
                scrape_interval_s=1.0,
                evaluation_interval_s=1.0,
            )
        ),
        tmp_path / "prometheus.yml",
    )
    am_spec = alertmanager_spec(am_config, tmp_path / "am-data", am_port)
    prom_spec = prometheus_spec(prom_config, tmp_path / "prom-data", prom_port)

    with process_runner(am_spec), process_runner(prom_spec):
        prom = PrometheusClient(f"http://127.0.0.1:{prom_port}")
        am = AlertmanagerClient(f"http://127.0.0.1:{am_port}")
        assert am.status().cluster_status == "disabled"
        assert {"PaymentErrorRatioHigh", "ServiceDown"} <= {r.name for r in prom.rules()}
        assert all(r.health != "err" for r in prom.rules())

        prom.wait_until(
            'ALERTS{alertname="PaymentErrorRatioHigh",alertstate="firing",method="paypal"}',
            bool,
            timeout_s=DEADLINE_S,
            poll_s=1.0,
        )
        deadline = time.monotonic() + 20.0
        while not webhook.notified("PaymentErrorRatioHigh", "paypal"):
            assert time.monotonic() < deadline, f"webhook got only {webhook.payloads}"
            time.sleep(0.5)

        firing = [a for a in prom.alerts() if a.name == "PaymentErrorRatioHigh" and a.firing]
        assert [(a.labels["method"], a.labels["component"]) for a in firing] == [("paypal", "api")]
        assert "paypal" in firing[0].annotations["summary"]
        assert firing[0].active_at is not None

        held = [a for a in am.alerts() if a.name == "PaymentErrorRatioHigh"]
        assert [a.labels["method"] for a in held] == ["paypal"]
        assert held[0].receivers == ("paychaos-collector",)

        health = {t.job: t.up for t in prom.targets()}
        assert health == {"payment-api": True, "prometheus": True, "alertmanager": True}

        seed = prom.query(
            'bottomk(1, sum by (method) (increase(shop_payments_total{status="success"}[24h])))'
        )
        assert [labels["method"] for labels, _ in seed] == ["amex"]
