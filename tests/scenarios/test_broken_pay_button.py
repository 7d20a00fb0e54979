"""A broken pay button (``broken-pay-button``): the fault, the shoppers it breaks, and the
scenario's negative control on a real stack.

The driver tests run the real traffic driver against a loopback shop and a loopback
collector that record what reaches them: a click on the broken button never reaches the
shop and is reported by the browser's RUM (a Faro exception with context ``method`` and
``screen``); the button mends by itself at its deadline, or at once when reverted. The
negative control runs ``scenarios/broken-pay-button.yaml`` with the shoppers' RUM off:
the button breaks the same, the backend stays as quiet, and the scenario fails.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from paychaos.contracts.domain import Method
from paychaos.contracts.errors import FaultInjectionFailed, InvalidScenario
from paychaos.contracts.faults import FaultEnv
from paychaos.contracts.scenario import MetricExpectation, NoAlertsProbe, Traffic
from paychaos.runner.actors import BUTTON_ERRORS, run_catalog
from paychaos.runner.runner import run_scenario
from paychaos.runner.suite import settle
from paychaos.runner.traffic import AsyncTrafficDriver
from paychaos.scenario import load_scenario, parse_scenario
from paychaos.stack.monitoring.promapi import PrometheusClient
from tests.live_stack import LiveStack

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "broken-pay-button.yaml"


@dataclass
class _Seen:
    """What reached the loopback shop (key, method, arrival) and collector (Faro bodies)."""

    checkouts: list[tuple[str, str, float]] = field(default_factory=list)
    rum: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def exceptions(self) -> list[tuple[str, dict[str, Any]]]:
        """(session id, exception) of every Faro exception the browsers sent."""
        with self.lock:
            return [
                (body["meta"]["session"]["id"], exc)
                for body in self.rum
                for exc in body.get("exceptions", [])
            ]

    def clicks(self) -> dict[str, str]:
        """session id -> method of every click_payment_button event."""
        with self.lock:
            return {
                body["meta"]["session"]["id"]: event["attributes"]["method"]
                for body in self.rum
                for event in body.get("events", [])
                if event["name"] == "click_payment_button"
            }


@contextmanager
def _shop_and_collector() -> Iterator[tuple[str, str, _Seen]]:
    seen = _Seen()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/collect":
                with seen.lock:
                    seen.rum.append(body)
                answer, status = b"{}", 202
            else:
                key = self.headers.get("Idempotency-Key", "")
                with seen.lock:
                    seen.checkouts.append((key, body["method"], time.monotonic()))
                    n = len(seen.checkouts)
                answer = json.dumps(
                    {"id": f"pay_{n}", "status": "succeeded", "method": body["method"]}
                ).encode()
                status = 201
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield base + "/api/checkout", base, seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _ledger(driver: AsyncTrafficDriver) -> list[dict[str, Any]]:
    return [
        json.loads(line) for path in driver.ledger_paths() for line in path.read_text().splitlines()
    ]


def _index(key: str) -> int:
    return int(key.rsplit("-", 1)[1])


MIX: dict[Method, float] = {"visa": 1.0, "paypal": 1.0}


def _sending(driver: AsyncTrafficDriver, timeout_s: float = 60) -> None:
    """Wait until the shoppers send (the driver builds its shopper pools first)."""
    deadline = time.monotonic() + timeout_s
    while driver.stats().sent == 0:
        assert time.monotonic() < deadline, f"no checkout sent within {timeout_s:g}s"
        assert driver.failure is None, driver.failure
        time.sleep(0.05)


def test_a_broken_button_throws_in_the_browser_sends_nothing_and_mends_itself(
    tmp_path: Path,
) -> None:
    with _shop_and_collector() as (shop, collector, seen):
        driver = AsyncTrafficDriver(shop, collector, ledger_dir=tmp_path, seed=7)
        with pytest.raises(FaultInjectionFailed, match="shoppers running"):
            driver.break_pay_button("b", duration_s=1.0, method="paypal")
        driver.start(Traffic(rate_per_s=20, duration_s=6, mix=MIX))
        _sending(driver)
        time.sleep(0.5)
        error = BUTTON_ERRORS["TypeError"]
        facts = driver.break_pay_button("b", duration_s=2.0, method="paypal", error=error)
        deadline = time.monotonic() + 2.0
        with pytest.raises(FaultInjectionFailed, match="already broken"):
            driver.break_pay_button("b", duration_s=1.0)
        assert driver.wait(30)  # never reverted: it mends by itself at its deadline
        counts = driver.stop_actor("b")
        stats = driver.stop()
    assert facts == {
        "method": "paypal",
        "share": "1",
        "error": f"{error[0]}: {error[1]}",
        "rum": "on",
    }
    thrown = seen.exceptions()
    assert thrown, "the browsers reported no exception"
    sessions = {session for session, _ in thrown}
    assert len(sessions) == len(thrown) == counts["clicks_broken"] == stats.button_errors
    for _session, exc in thrown:
        assert (exc["type"], exc["value"]) == error
        assert exc["context"] == {"method": "paypal", "screen": "checkout"}
    clicks = seen.clicks()
    assert all(clicks[s] == "paypal" for s in sessions)  # the click, then the error

    # what threw never left the browser: not at the shop, not in the ledger
    keys = {session.removeprefix("paychaos-7-") for session in sessions}
    sent = {key for key, _, _ in seen.checkouts}
    assert not keys & sent
    ledger = _ledger(driver)
    assert {row["key"] for row in ledger} == sent and stats.sent == len(sent)
    # every paypal click from the first broken one to the last threw (share 1.0), visa did not
    first, last = min(map(_index, keys)), max(map(_index, keys))
    during = [(k, m) for k, m, _ in seen.checkouts if first <= _index(k) <= last]
    assert during and {m for _, m in during} == {"visa"}
    # and after its deadline PayPal payments reach the shop again
    assert any(m == "paypal" and at > deadline for _, m, at in seen.checkouts)
    assert driver.stop_actor("b") == {}  # mended: nothing left to stop


def test_reverting_mends_the_button_at_once_and_without_rum_nobody_is_told(
    tmp_path: Path,
) -> None:
    with _shop_and_collector() as (shop, collector, seen):
        driver = AsyncTrafficDriver(shop, collector, ledger_dir=tmp_path, seed=7)
        driver.start(Traffic(rate_per_s=20, duration_s=5, mix=MIX, rum=False))
        _sending(driver)
        time.sleep(0.5)
        facts = driver.break_pay_button("b", duration_s=60, share=1.0)  # every method
        time.sleep(1.0)
        counts = driver.stop_actor("b")
        reverted = time.monotonic()
        assert driver.wait(30)
        stats = driver.stop()
    assert facts["rum"] == "off" and facts["method"] == "*"
    assert counts["clicks_broken"] > 0 and stats.button_errors == counts["clicks_broken"]
    assert seen.rum == []  # the button broke, and no browser said so
    # reverted long before its 60 s: checkouts reach the shop again
    assert any(at > reverted for _, _, at in seen.checkouts)
    assert len(_ledger(driver)) == len(seen.checkouts) == stats.sent


def test_the_fault_breaks_the_runs_button_and_reverts_with_its_counts(tmp_path: Path) -> None:
    catalog = run_catalog()
    assert "broken-pay-button" in catalog.names()
    prepared = catalog.validate(
        "broken-pay-button", {"method": "paypal", "error": "ChunkLoadError"}, 30
    )
    assert catalog.requires(prepared) == []
    with _shop_and_collector() as (shop, collector, seen):
        driver = AsyncTrafficDriver(shop, collector, ledger_dir=tmp_path, seed=7)
        env = FaultEnv(target=None, state_dir=tmp_path, traffic=driver)  # type: ignore[arg-type]
        fault = catalog.build(prepared, env)
        with pytest.raises(FaultInjectionFailed, match="shoppers running"):
            fault.inject()
        driver.start(Traffic(rate_per_s=20, duration_s=4, mix=MIX))
        _sending(driver)
        time.sleep(0.5)
        fault.inject()
        time.sleep(1.5)
        fault.revert()
        fault.revert()  # idempotent
        driver.stop()
        no_button = catalog.build(prepared, FaultEnv(target=None, state_dir=tmp_path))  # type: ignore[arg-type]
        with pytest.raises(FaultInjectionFailed, match="no pay button"):
            no_button.inject()
    facts = fault.facts  # type: ignore[attr-defined]
    assert facts["error"] == "Error: Payment widget failed to load: ChunkLoadError"
    assert int(facts["clicks_broken"]) == len(seen.exceptions()) > 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{method: bitcoin}", "faults[0].params.method"),
        ("{share: 0}", "faults[0].params.share"),
        ("{share: 1.5}", "faults[0].params.share"),
        ("{error: SyntaxError}", "faults[0].params.error"),
        ("{shares: 1}", "faults[0].params.shares: unknown field"),
    ],
)
def test_bad_broken_button_steps_are_refused_naming_the_place(params: str, message: str) -> None:
    text = SCENARIO.read_text().replace(
        "params: {method: paypal, share: 1.0, error: TypeError}", f"params: {params}"
    )
    assert text != SCENARIO.read_text()
    with pytest.raises(InvalidScenario) as info:
        parse_scenario(text, "b.yaml")
    assert message in str(info.value) and "Traceback" not in str(info.value)


def test_the_scenario_expects_rum_and_forbids_every_backend_signal() -> None:
    sc = load_scenario(SCENARIO).scenario
    assert [f.fault for f in sc.faults] == ["broken-pay-button"]
    kinds = {
        (e.type, getattr(e, "alert", None), getattr(e, "absent", False)) for e in sc.expectations
    }
    assert ("rum", None, False) in kinds and ("alert", "FrontendErrors", False) in kinds
    for backend in ("DatabaseLatencyHigh", "GatewayErrorRatioHigh", "PaymentErrorRatioHigh"):
        assert ("alert", backend, True) in kinds
    assert ("metric", None, True) in kinds and ("ledger", None, False) in kinds


@pytest.mark.integration
def test_without_rum_the_broken_button_goes_unnoticed_and_the_scenario_fails(
    run_stack: LiveStack,
) -> None:
    """The negative control: the real scenario with the shoppers' RUM off (the key signal
    removed). The button breaks as before and no backend signal moves, so the RUM
    expectation and FrontendErrors fail, the must-nots hold, and the run fails."""
    raw = yaml.safe_load(SCENARIO.read_text())
    raw["traffic"]["rum"] = False
    loaded = parse_scenario(yaml.safe_dump(raw, sort_keys=False), "broken-pay-button-no-rum.yaml")
    prometheus = PrometheusClient(run_stack.urls["prometheus"])
    probes = [p for p in loaded.scenario.steady_state.probes if isinstance(p, NoAlertsProbe)]
    settle(prometheus, loaded.scenario.settle_s, probes)  # earlier tests' alerts clear first
    record = run_scenario(loaded, run_stack.session)
    status = {e.name: e.status for e in record.expectations}
    detail = f"{record.status}: {record.reason}; {status}"
    assert record.status == "failed", detail
    assert status.pop("the browsers report the error with its context (method, screen)") == (
        "failed"
    ), detail
    assert status.pop("FrontendErrors fires for paypal and is notified") == "failed", detail
    assert set(status.values()) == {"passed"}, detail  # the backend really stayed quiet
    facts = record.faults[0].facts
    assert facts["rum"] == "off" and int(facts["clicks_broken"]) > 0  # it did break

    # The "no 5xx" must-not reads a selector that matches the API's real requests: the
    # same query for 2xx finds them (so a 5xx would have been seen, not missed by a typo).
    no_5xx = next(e for e in loaded.scenario.expectations if isinstance(e, MetricExpectation))
    assert 'code=~"5.."' in no_5xx.query
    ok_query = no_5xx.query.replace('code=~"5.."', 'code=~"2.."').replace("[30s]", "[5m]")
    samples = prometheus.query(ok_query)
    assert samples and samples[0].value > 0, (ok_query, samples)
