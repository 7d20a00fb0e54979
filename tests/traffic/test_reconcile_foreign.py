"""Ledger reconciliation through the adapter's read-back, against a foreign shop API.

The foreign shop (``tests/foreign/shop_api.py``) has no gateway ledger: the
ledger check reads every payment back (``GET /v2/payments/{ref}``), passes
when the shop kept them, says plainly that double charges were not checked,
and fails naming the key when the shop loses a payment (its ``/admin/lose``
switch). The bounded ``loadgen`` driver and the scenario driver both speak
the adapter and write the same ledger lines; the scenario driver's browser
reports the shared model's RUM.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from paychaos.checks import CheckContext, LedgerCheck, Window
from paychaos.contracts.errors import InvalidTarget
from paychaos.contracts.scenario import Traffic
from paychaos.contracts.target import Checkout, Target
from paychaos.loadgen import drive
from paychaos.runner.needs import unmet
from paychaos.runner.traffic import AsyncTrafficDriver
from paychaos.scenario.load import parse_scenario
from paychaos.stack.collector.faro import FaroPayload, rum_items
from paychaos.stack.collector.memory import InMemorySources
from paychaos.stack.monitoring.memory import InMemoryMetricsSource
from paychaos.traffic.ledger import read_ledgers
from paychaos.traffic.reconcile import reconcile
from tests.foreign.testkit import ShopApi, run_shop_api
from tests.targets.test_foreign_target import TARGET

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def foreign_target(shop_url: str, *, read_back: bool = True) -> Target:
    """The foreign shop's target (the adapter of ``tests/targets/test_foreign_target.py``)."""
    raw = yaml.safe_load(
        TARGET.format(shop=shop_url, prometheus="http://127.0.0.1:9", pid_file="/nonexistent")
    )
    del raw["signals"], raw["actuators"]
    if not read_back:
        del raw["checkout"]["adapter"]["read_back"]
    return Target.model_validate(raw)


class _Ledger:
    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def ledger_paths(self) -> list[Path]:
        return self.paths


def _ctx(checkout: Checkout, paths: list[Path]) -> CheckContext:
    sources = InMemorySources()
    return CheckContext(
        metrics=InMemoryMetricsSource(),
        traces=sources,
        logs=sources,
        rum=sources,
        notifications=sources,
        api_url=checkout.url,
        client_ledger=_Ledger(paths),
        checkout=checkout,
    )


@pytest.fixture(scope="module")
def shop() -> Iterator[ShopApi]:
    with run_shop_api(args=("--limit-cents", "20000")) as api:
        yield api


def _run_scenario_traffic(checkout: Checkout, ledger_dir: Path) -> list[Path]:
    driver = AsyncTrafficDriver(checkout.url, checkout=checkout, ledger_dir=ledger_dir, seed=3)
    driver.start(Traffic(rate_per_s=25, duration_s=2.5, rum=False, request_timeout_s=3))
    assert driver.wait(30), "the scenario traffic did not end by itself"
    assert driver.failure is None, driver.failure
    return driver.ledger_paths()


def test_the_ledger_check_passes_through_read_back_and_says_what_it_could_not_check(
    shop: ShopApi, tmp_path: Path
) -> None:
    checkout = foreign_target(shop.url).checkout
    shop.set_faults(unavailable_every=4, after_charge=True)  # answers lost after charging
    try:
        paths = _run_scenario_traffic(checkout, tmp_path)
    finally:
        shop.set_faults()
    entries = list(read_ledgers(paths))
    outcomes = {e.outcome for e in entries}
    assert len(entries) >= 40 and {"succeeded", "declined"} <= outcomes, outcomes
    assert any(e.attempts > 1 and e.outcome == "succeeded" for e in entries)  # same key, retried
    assert all(e.payment_id and e.payment_id.startswith("pay_") for e in entries)
    seen = LedgerCheck(settle_s=0).observe(_ctx(checkout, paths), Window(time.time() - 60))
    assert seen.seen, seen.detail
    assert f"{len(entries)} checkouts: 0 lost" in seen.detail
    assert "double charges not checked" in seen.detail and "gateway.ledger" in seen.detail


def test_the_ledger_check_fails_naming_a_payment_the_shop_lost(
    shop: ShopApi, tmp_path: Path
) -> None:
    checkout = foreign_target(shop.url).checkout
    paths = _run_scenario_traffic(checkout, tmp_path)
    lost = shop.lose_payments(2)
    assert len(lost) == 2
    seen = LedgerCheck(settle_s=0).observe(_ctx(checkout, paths), Window(time.time() - 60))
    assert not seen.seen
    assert "2 lost" in seen.detail, seen.detail
    key = next(iter(lost))
    assert key in seen.detail and "the shop has no such payment" in seen.detail
    report = reconcile(paths, checkout)
    assert {f.idempotency_key for f in report.lost} == set(lost)
    assert not report.double_charges_checked and not report.ok
    tolerant = LedgerCheck(settle_s=0, max_lost=2).observe(
        _ctx(checkout, paths), Window(time.time() - 60)
    )
    assert tolerant.seen, tolerant.detail


def test_a_target_that_cannot_read_back_is_marked_unavailable(
    shop: ShopApi, tmp_path: Path
) -> None:
    target = foreign_target(shop.url, read_back=False)
    paths = _run_scenario_traffic(target.checkout, tmp_path)
    seen = LedgerCheck(settle_s=0).observe(_ctx(target.checkout, paths), Window(0))
    assert not seen.seen and "not checkable" in seen.detail and "read_back" in seen.detail
    with pytest.raises(InvalidTarget, match="no read_back"):
        reconcile(paths, target.checkout)
    # The runner refuses a ledger expectation on it up front; with read-back it does not,
    # and no gateway ledger is asked for.
    scenario = parse_scenario(
        "name: money\ntraffic: {rate_per_s: 5, duration_s: 5}\n"
        "expectations:\n  - {name: money, type: ledger}\n"
    )
    from paychaos.chaos.catalog import default_catalog

    catalog = default_catalog()
    assert [need for _, need in unmet(scenario, target, catalog)] == ["checkout.readback"]
    assert unmet(scenario, foreign_target(shop.url), catalog) == []
    assert LedgerCheck.needs == ("checkout.readback",)


def test_loadgen_drives_the_foreign_shop_and_its_ledger_reconciles(
    shop: ShopApi, tmp_path: Path
) -> None:
    checkout = foreign_target(shop.url).checkout
    before = shop.payments_total()
    ledger = tmp_path / "ledger-load-1.jsonl"
    result = asyncio.run(
        drive(checkout.url, total=60, concurrency=6, checkout=checkout, ledger=ledger, seed=5)
    )
    charged = sum(result.successes(m) for m in ("visa", "paypal", "amex", "crypto"))
    after = shop.payments_total()
    grew = sum(v for (_, s), v in after.items() if s == "success") - sum(
        v for (_, s), v in before.items() if s == "success"
    )
    assert result.sent == 60 and charged == grew > 0  # the shop counted what the adapter read
    assert {code for (_, code) in result.by_method_status} == {200}
    report = reconcile([ledger], checkout)
    assert report.ok and report.checkouts == 60, report.summary()


class _Capture(http.server.BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_the_scenario_driver_s_browser_reports_the_model_s_rum(
    shop: ShopApi, tmp_path: Path
) -> None:
    """Each checkout of the scenario driver is one Faro body of the shared model: the
    checkout page's web vitals, ``click_payment_button`` (method, cart value), a
    ``PaymentError`` per failed attempt, the result."""
    checkout = foreign_target(shop.url).checkout
    _Capture.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    shop.set_faults(unavailable_every=3)  # every 3rd new order: 503 once, then retried
    try:
        driver = AsyncTrafficDriver(
            checkout.url,
            f"http://127.0.0.1:{server.server_address[1]}",
            checkout=checkout,
            ledger_dir=tmp_path,
            seed=4,
        )
        driver.start(Traffic(rate_per_s=20, duration_s=2, rum=True, request_timeout_s=3))
        assert driver.wait(30) and driver.failure is None, driver.failure
    finally:
        shop.set_faults()
        server.shutdown()
        server.server_close()
    entries = {e.key: e for e in read_ledgers(driver.ledger_paths())}
    items = [
        i for body in _Capture.bodies for i in rum_items(FaroPayload.model_validate_json(body))
    ]
    clicks = [i for i in items if i.kind == "event" and i.name == "click_payment_button"]
    assert len(_Capture.bodies) == len(clicks) == len(entries) >= 20
    methods = Counter(e.method for e in entries.values())
    assert Counter(str(c.attributes["method"]) for c in clicks) == methods
    assert all(float(str(c.attributes["cart_value"])) > 0 for c in clicks)
    errors = [i for i in items if i.kind == "exception" and i.name == "PaymentError"]
    assert len(errors) == sum(e.attempts - 1 for e in entries.values()) > 0
    assert {str(e.attributes["status"]) for e in errors} == {"503"}
    assert any(i.kind == "measurement" and i.name == "LCP" for i in items)
    results = [i for i in items if i.kind == "event" and i.name == "payment_result"]
    assert Counter(str(r.attributes["outcome"]) for r in results) == Counter(
        e.outcome for e in entries.values()
    )
