"""``paychaos up --backend docker --app nestjs`` through the real CLI, on a real Docker Engine.

One stack, as a user would start it, in subprocesses: the seed's NestJS service in
its own container (image ``paychaos/nestjs``, Node.js from Debian 13) in place of
paychaos' own API, on free ports, then:

- ``paychaos target check --target docker`` passes;
- one checkout through the target's adapter (:class:`CheckoutClient`) is charged;
- the checkout page (``--webapp``: a container serving the host's ``make webapp`` build)
  clicked in headless Chromium is one trace, from the browser's ``checkout`` span
  through the NestJS container's server span to its ``INSERT``, in the collector;
- Prometheus holds ``shop_payments_total`` scraped from the NestJS container (job
  ``payment-api``, beside prom-client's ``nodejs_version_info``);
- ``paychaos run scenarios/db-latency.yaml --target docker`` passes on it, unchanged;

and ``paychaos down`` always: no container of the project, no new volume, no state
directory left.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from docker_engine import REPO, docker_engine, ensure_base_image
from test_cli_docker_target import docker_up_args, not_passed, paychaos

from paychaos.stack.backends.images import ImageSet, build_all
from paychaos.stack.monitoring.promapi import PrometheusClient
from paychaos.stack.state import read_state
from paychaos.traffic.adapter import Cart, CheckoutClient
from tests.browser import Browser
from tests.webapp.test_checkout_page import _get, _pay, _poll, _require_page

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]


def charge(client: CheckoutClient, key: str) -> tuple[str, int, bytes]:
    """One visa checkout of 19.00 through the adapter: (verdict, status, body)."""
    cart = Cart(
        key=key,
        method="visa",
        amount_cents=1900,
        currency="USD",
        customer={"id": "cus_1", "email": "ana@example.com", "name": "Ana"},
        items=[{"sku": "SKU-1", "name": "mug", "quantity": 2, "unit_price": "9.50"}],
        payment={"card_token": "tok_visa_1a2b", "last4": "4242"},
        order_id=f"ord_{key}",
    )
    request = client.request(cart)
    http = urllib.request.Request(
        request.url, request.body, dict(request.headers), method=request.method
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(http, timeout=10) as answer:
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        with exc:
            status, body = exc.code, exc.read()
    return client.classify(status, body), status, body


def browser_trace(page: Browser, web: str, collector: str) -> list[dict[str, Any]]:
    """Click the page's checkout; the spans of its trace once they reach the collector."""
    status = _pay(page, f"{web}/?method=amex")
    assert status["outcome"] in ("succeeded", "declined"), status

    def whole_trace() -> list[dict[str, Any]] | None:
        spans = list(_get(f"{collector}/api/traces/{status['traceId']}")["results"])
        browser = any(s["service"] == "shop-frontend" and s["name"] == "checkout" for s in spans)
        insert = any(s["name"].startswith("pg.query:INSERT") for s in spans)
        return spans if browser and insert else None

    found: list[dict[str, Any]] = _poll(f"trace {status['traceId']}", whole_trace)
    return found


def test_the_nestjs_service_runs_as_the_docker_stacks_api(tmp_path):
    _require_page()
    with docker_engine() as (client, host):
        images = ImageSet()
        ensure_base_image(client, host, images.base)
        ensure_base_image(client, host, images.node_base)
        print(f"\nimages built: {build_all(client, images, nestjs=True)}")
        env = {**os.environ, "DOCKER_HOST": host, "PYTHONPATH": str(REPO)}
        env = {k: v for k, v in env.items() if not k.startswith("PAYCHAOS_")}
        project = f"paychaos-nest-{secrets.token_hex(3)}"
        volumes_before = {v.name for v in client.volumes.list()}
        state = Path(tempfile.mkdtemp(prefix="paychaos-docker-nestjs-"))
        reports = state / "reports"
        try:
            up = paychaos(
                state,
                *docker_up_args(project, "--app", "nestjs", "--webapp"),
                env=env,
                timeout_s=600,
            )
            assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
            api = client.containers.get(f"{project}-api")
            assert api.image.tags == [images.nestjs], api.image.tags
            assert api.attrs["Config"]["Cmd"][:2] == ["node", "dist/main.js"]

            check = paychaos(state, "target", "check", "--target", "docker", env=env, timeout_s=120)
            assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]

            stack = read_state(state)
            assert stack is not None and stack.target is not None and stack.app == "nestjs"
            target = stack.target
            offered = target.capabilities()
            assert "container.api" in offered and "api.leak" not in offered, offered
            adapter = CheckoutClient(target.checkout)
            outcomes = [charge(adapter, f"nest-docker-{i:04d}") for i in range(8)]
            # the gateway simulator declines a small share at random: most are charged
            assert any(v == "charged" for v, _, _ in outcomes), outcomes
            assert all(v in ("charged", "declined") for v, _, _ in outcomes), outcomes

            assert target.signals.traces is not None
            with Browser(tmp_path) as page:
                spans = browser_trace(
                    page, f"http://127.0.0.1:{stack.ports['webapp']}", target.signals.traces.url
                )
            by_id = {span["span_id"]: span for span in spans}
            insert = next(span for span in spans if span["name"].startswith("pg.query:INSERT"))
            server = by_id[insert["parent_span_id"]]
            assert (server["service"], server["kind"]) == ("payment-api", "server"), server
            fetch = by_id[server["parent_span_id"]]  # the browser's fetch, across origins
            assert (fetch["service"], fetch["kind"]) == ("shop-frontend", "client"), fetch

            prometheus = PrometheusClient(target.signals.prometheus or "")
            query = 'sum(shop_payments_total{job="payment-api",method="visa"})'
            # every checkout above was counted (charged or declined), once scraped
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                found = prometheus.query(query)
                if found and found[0].value >= len(outcomes):
                    break
                time.sleep(1)
            assert found and found[0].value >= len(outcomes), found
            node = prometheus.query('nodejs_version_info{job="payment-api"}')
            assert node, "no prom-client series from the payment-api job: not the NestJS service"

            run = paychaos(
                state,
                "run",
                "scenarios/db-latency.yaml",
                "--target",
                "docker",
                "--no-progress",
                "--reports-dir",
                str(reports),
                env=env,
                timeout_s=900,
            )
            report_files = list(reports.glob("*/report.json"))
            report = json.loads(report_files[0].read_text()) if report_files else {"runs": []}
            assert run.returncode == 0, (run.stdout + run.stderr)[-4000:] + not_passed(report)
            assert [r["status"] for r in report["runs"]] == ["passed"], not_passed(report)
        finally:
            down = paychaos(state, "down", env=env, timeout_s=180)
            left = client.containers.list(
                all=True, filters={"label": f"paychaos.project={project}"}
            )
            new_volumes = {v.name for v in client.volumes.list()} - volumes_before
            shutil.rmtree(state, ignore_errors=True)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not left, f"containers left behind: {[c.name for c in left]}"
        assert not new_volumes, f"volumes left behind: {sorted(new_volumes)}"
        assert not state.exists()
