"""A deployment paychaos did not start: a foreign checkout API of another shape.

The test brings up the foreign shop (``tests/foreign/shop_api.py``: ``PUT
/v2/orders/{key}/payment``, answers ``{"state": "PAID"}``), a real Prometheus
scraping it, writes a target file for them, and drives the real CLI:
``target check``, ``chaos inject`` and ``run`` work through the adapter; what
the target lacks is reported, and a scenario needing it is refused (exit 2).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paychaos.chaos import procs
from paychaos.stack.monitoring.config import (
    PrometheusSettings,
    ScrapeTarget,
    render_prometheus_config,
    write_config,
)
from paychaos.stack.monitoring.processes import prometheus_spec
from paychaos.stack.service import free_port
from tests.foreign.testkit import ShopApi, run_shop_api
from tests.monitoring.conftest import run_process

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TARGET = """\
name: foreign-shop
description: a checkout API paychaos did not write, scraped by its own Prometheus
checkout:
  url: {shop}
  adapter:
    method: PUT
    path: /v2/orders/{{key}}/payment
    body:
      total: {{cents: "{{amount_cents}}", ccy: "{{currency}}"}}
      paymentMethod: "{{method}}"
      buyer: "{{customer}}"
      lines: "{{items}}"
    outcomes:
      charged: [{{status: 200, pointer: /state, equals: PAID}}]
      declined: [{{status: 200, pointer: /state, equals: REFUSED}}]
      invalid: [{{status: 400}}, {{status: 409}}]
      retry: [{{status: 503}}]
    payment_id: /ref
    read_back: {{path: "/v2/payments/{{id}}", status_pointer: /state, charged_values: [PAID]}}
signals:
  prometheus: {prometheus}
actuators:
  processes:
    pid_files: {{api: {pid_file}}}
timing: {{scrape_interval_s: 1, evaluation_interval_s: 1, group_wait_s: 0}}
"""

FREEZE = """\
name: foreign-freeze
description: the foreign API is frozen (SIGSTOP) for 6 s; Prometheus sees it down.
traffic: {rate_per_s: 8, duration_s: 22, rum: false, request_timeout_s: 2}
faults:
  - {id: freeze, fault: pause, at_s: 6, duration_s: 6, params: {component: api}}
expectations:
  - {name: the shop's scrape fails, type: metric, query: 'up{job="shop"}', op: "==", value: 0,
     after: freeze, within_s: 12}
  - {name: checkouts are charged through the adapter, type: metric,
     query: 'sum(shop_payments_total{status="success"})', op: ">", value: 20, within_s: 22}
"""


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ShopApi, Path]]:
    work = tmp_path_factory.mktemp("foreign")
    (work / "shop").mkdir()
    with run_shop_api(state_dir=work / "shop") as shop:
        port = free_port()
        shop_port = int(shop.url.rsplit(":", 1)[1])
        config = write_config(
            render_prometheus_config(
                PrometheusSettings(
                    targets=(ScrapeTarget("shop", "127.0.0.1", shop_port),),
                    rules_dir=None,
                    scrape_interval_s=1.0,
                    evaluation_interval_s=1.0,
                )
            ),
            work / "prometheus.yml",
        )
        spec = prometheus_spec(config, work / "prom-data", port)
        with run_process(spec, work / "prometheus.log"):
            target = work / "foreign-shop.yaml"
            target.write_text(
                TARGET.format(
                    shop=shop.url, prometheus=f"http://127.0.0.1:{port}", pid_file=shop.pid_file
                )
            )
            yield shop, target


def cli(work: Path, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYCHAOS_")}
    return subprocess.run(
        [sys.executable, "-m", "paychaos.cli", "--state-dir", str(work / "state"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def test_target_check_reports_what_the_foreign_target_can_and_cannot_do(
    foreign: tuple[ShopApi, Path],
) -> None:
    _shop, target = foreign
    done = cli(target.parent, "target", "check", "--target", str(target))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("  ")}
    assert "ok" in lines["checkout"] and "ok" in lines["prometheus"]
    assert "ok" in lines["process.api"]
    assert lines["pause"].split()[1] == "yes" and lines["metric"].split()[1] == "yes"
    assert "proxy.database: not configured" in lines["db-latency"]
    assert "traces: not configured" in lines["trace"]


def test_chaos_inject_pauses_the_foreign_process_and_it_comes_back(
    foreign: tuple[ShopApi, Path],
) -> None:
    shop, target = foreign
    work = target.parent
    done = cli(work, "chaos", "inject", "pause", "--component", "api", "--for", "3s",
               "--target", str(target))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert procs.state(shop.pid) in ("T", "t")
    deadline = time.monotonic() + 15
    while procs.state(shop.pid) in ("T", "t") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert procs.state(shop.pid) in ("S", "R"), "the watchdog did not resume it at the TTL"
    events = cli(work, "chaos", "events", "--target", str(target))
    assert "injected" in events.stdout and "pause" in events.stdout


def test_a_scenario_runs_through_the_adapter_and_one_it_cannot_run_is_refused(
    foreign: tuple[ShopApi, Path],
) -> None:
    shop, target = foreign
    work = target.parent
    scenario = work / "freeze.yaml"
    scenario.write_text(FREEZE)
    before = shop.payments_total()
    reports = work / "reports"
    done = cli(work, "run", str(scenario), "--target", str(target), "--no-progress",
               "--reports-dir", str(reports), timeout_s=200)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    (report,) = list(reports.glob("*/report.json"))
    run = json.loads(report.read_text())["runs"][0]
    assert run["status"] == "passed" and run["stack"]["target"] == "foreign-shop"
    # "checkouts are charged" held before the fault: not detected 0.005 s after it
    assert run["times_below_floor"] == []
    after = shop.payments_total()
    charged = sum(v for (m, s), v in after.items() if s == "success") - sum(
        v for (m, s), v in before.items() if s == "success"
    )
    assert charged >= 20  # the shop itself counted them: the adapter spoke its language
    refused = cli(work, "run", str(REPO / "scenarios" / "db-latency.yaml"), "--target", str(target))
    assert refused.returncode == 2
    assert "faults[0] db-latency: target foreign-shop lacks proxy.database" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (work / "state" / "stack.json").exists()  # nothing was started for it


UNMET = """\
name: foreign-unmet
description: an expectation the shop cannot meet (no fault makes its scrape fail).
traffic: {rate_per_s: 4, duration_s: 4, rum: false, request_timeout_s: 2}
expectations:
  - {name: the shop's scrape fails without a fault, type: metric, query: 'up{job="shop"}',
     op: "==", value: 0, within_s: 3}
"""


def test_run_exits_1_when_an_expectation_fails(foreign: tuple[ShopApi, Path]) -> None:
    _shop, target = foreign
    work = target.parent
    scenario = work / "unmet.yaml"
    scenario.write_text(UNMET)
    reports = work / "reports-unmet"
    done = cli(work, "run", str(scenario), "--target", str(target), "--no-progress",
               "--reports-dir", str(reports), timeout_s=120)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    (report,) = list(reports.glob("*/report.json"))
    run = json.loads(report.read_text())["runs"][0]
    assert run["status"] == "failed"
    assert run["reason"] == "expectation failed: the shop's scrape fails without a fault"
    assert "failed   " in done.stdout and "the shop's scrape fails without a fault" in done.stdout
