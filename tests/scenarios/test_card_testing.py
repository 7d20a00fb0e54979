"""Card testing: the processor's screen, the tester, the scenario and its culprit controls.

The culprit controls load the real ``scenarios/card-testing.yaml`` and run its
culprit expectations against in-memory telemetry: with the customer attribute
missing they fail, with another customer dominating they fail naming the wrong
one, with the injected customer dominating they hold.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from paychaos.checks import CheckContext, Window
from paychaos.checks.build import build_check
from paychaos.contracts.domain import DEFAULT_MIX
from paychaos.contracts.errors import FaultInjectionFailed, InvalidScenario
from paychaos.contracts.scenario import CulpritExpectation, Traffic
from paychaos.contracts.signals import LogRecord, Span
from paychaos.report.matrix import row_of
from paychaos.report.model import ExpectationRecord, RunRecord
from paychaos.runner.actors import run_catalog
from paychaos.runner.floors import culprit_floor_s
from paychaos.runner.traffic import AsyncTrafficDriver
from paychaos.scenario.load import load_scenario, parse_scenario
from paychaos.stack.collector.memory import InMemorySources
from paychaos.stack.gateway.charges import parse_charge
from paychaos.stack.gateway.screen import DECLINE_CODE, MAX_CARDS, CardTestingScreen
from paychaos.stack.monitoring.memory import InMemoryMetricsSource
from paychaos.stack.telemetry import contains_pan
from paychaos.traffic.card_testing import CardTester
from paychaos.traffic.model import ShopperModel, pools_for

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "card-testing.yaml"
NOW = time.time()
NS = 1_000_000_000
TESTER = "cus_00c0ffee01"


# ------------------------------------------------------------------ the screen


def test_the_screen_declines_a_customer_past_its_distinct_cards() -> None:
    screen = CardTestingScreen(max_cards=10, window_s=60)
    codes = [screen.decline_code(TESTER, f"tok_visa_{i:012x}", now=i * 0.25) for i in range(40)]
    assert codes[:10] == [None] * 10
    assert codes[10:] == [DECLINE_CODE] * 30
    # a charge that names no customer is not screened
    assert all(screen.decline_code(None, f"tok_visa_{i:012x}", now=11.0) is None for i in range(40))
    # the same card again and again is not card testing
    assert all(screen.decline_code("cus_loyal", "tok_visa_1", now=t) is None for t in range(50))
    # the window slides: a minute later the tester's old cards have aged out
    assert screen.decline_code(TESTER, "tok_visa_new", now=10 + 61.0) is None


def test_normal_shoppers_never_reach_the_screen() -> None:
    """The pools give a customer at most a few cards: the screen declines none of them."""
    for seed in (7, 1):
        shoppers = ShopperModel(DEFAULT_MIX, seed=seed, decline_rate=0.05)
        cards: dict[str, set[str]] = defaultdict(set)
        for pools in (shoppers.regular, shoppers.declined):
            for purchases in pools.values():
                for purchase in purchases:
                    if "card_token" in purchase.payment:
                        cards[purchase.customer["id"]].add(purchase.payment["card_token"])
        assert max(len(tokens) for tokens in cards.values()) <= MAX_CARDS


def test_the_gateway_takes_the_customer_into_the_fingerprint() -> None:
    body = (
        b'{"amount_cents": 99, "currency": "USD", "method": "visa", "payment_id": "p1",'
        b' "source": {"card_token": "tok_visa_0a1b2c3d4e5f", "last4": "0002"}'
    )
    one = parse_charge(body + b', "customer": "cus_1"}')
    other = parse_charge(body + b', "customer": "cus_2"}')
    assert one.customer == "cus_1" and one.fingerprint != other.fingerprint
    assert parse_charge(body + b"}").customer is None


# ------------------------------------------------------------------ the tester


def test_the_tester_rotates_test_range_cards_and_sends_tokens_only() -> None:
    tester = CardTester(pools_for(7), random.Random(3), method="visa", cards=40)
    assert tester.customer_id in {c.id for c in pools_for(7).customers}
    pans = [card.pan for card in tester.cards]
    assert len(set(pans)) == 40 and all(p.startswith("400000") and len(p) == 16 for p in pans)
    assert all(contains_pan(p) for p in pans)  # Luhn-valid: a validator would take them
    carts = [tester.cart(i, f"k{i}") for i in range(80)]
    assert len({c.payment["card_token"] for c in carts}) == 40
    assert {c.customer["id"] for c in carts} == {tester.customer_id}
    for cart in carts:
        text = str(cart.builtin_body())
        assert not contains_pan(text) and not re.search(r"\d{13,19}", text)
    amex = CardTester(pools_for(7), random.Random(3), method="amex", cards=5)
    assert all(c.pan.startswith("370000") and len(c.pan) == 15 for c in amex.cards)


# ------------------------------------------------------------------ the scenario


def test_the_scenario_injects_a_bounded_card_tester_and_names_it() -> None:
    loaded = load_scenario(SCENARIO)
    sc = loaded.scenario
    assert sc.faults[0].fault == "card-testing"
    params = loaded.params[0].param_dict()
    assert params["rate_per_s"] * sc.faults[0].duration_s <= 100
    culprits = [e for e in sc.expectations if isinstance(e, CulpritExpectation)]
    assert {e.signal for e in culprits} == {"traces", "logs"}
    assert all(e.after == "card-tester" for e in culprits)
    assert sc.traffic.duration_s <= 45


BASE = """
name: x
traffic: {rate_per_s: 5, duration_s: 60}
faults:
  - {id: tester, fault: card-testing, at_s: 5, duration_s: 20, params: {rate_per_s: 4}}
expectations:
  - {type: culprit, after: tester}
"""


def _error(text: str) -> str:
    with pytest.raises(InvalidScenario) as info:
        parse_scenario(text, "x.yaml")
    return str(info.value)


def test_bad_card_testing_steps_are_refused_naming_the_place() -> None:
    assert parse_scenario(BASE, "x.yaml").params[0].param_dict()["method"] == "visa"
    message = _error(BASE.replace("rate_per_s: 4}", "rate_per_s: 40}").replace("20,", "60,"))
    assert "faults[0].params.rate_per_s" in message and "at most 2000" in message
    message = _error(BASE.replace("rate_per_s: 4}", "rate_per_s: 0}"))
    assert "faults[0].params.rate_per_s" in message
    message = _error(BASE.replace("rate_per_s: 4}", "rate_per_s: 4, method: paypal}"))
    assert "faults[0].params.method" in message
    message = _error(BASE.replace("rate_per_s: 4}", "rate_per_s: 4, pan: 1}"))
    assert "faults[0].params.pan" in message
    other = BASE.replace(
        "faults:\n",
        "faults:\n  - {id: slow, fault: db-latency, at_s: 1, duration_s: 5,"
        " params: {latency_ms: 100}}\n",
    ).replace("after: tester", "after: slow")
    assert "expectations[0].after" in _error(other) and "card-testing" in _error(other)
    assert "card-testing" in run_catalog().names()
    message = _error(BASE.replace("fault: card-testing", "fault: card-testin"))
    assert "faults[0].fault: unknown fault 'card-testin'" in message and "card-testing" in message


# ------------------------------------------------------------------ culprit controls


def _ctx(sources: InMemorySources, injected: str | None = TESTER) -> CheckContext:
    return CheckContext(
        metrics=InMemoryMetricsSource(),
        traces=sources,
        logs=sources,
        rum=sources,
        notifications=sources,
        clock=lambda: NOW,
        injected={"card-tester": {"customer_id": injected}} if injected else {},
    )


def _checkout(i: int, customer: str | None, status: str) -> Span:
    attrs: dict[str, object] = {"payment.status": status, "payment.method": "visa"}
    if customer is not None:
        attrs["customer.id"] = customer
    start = int((NOW - 20 + i * 0.1) * NS)
    return Span(
        trace_id=f"{i:032x}",
        span_id=f"{i:016x}",
        parent_span_id=None,
        name="POST /api/checkout",
        service="payment-api",
        kind="server",
        start_unix_ns=start,
        end_unix_ns=start + 5_000_000,
        attributes=attrs,  # type: ignore[arg-type]
    )


def _declined_log(i: int, customer: str | None) -> LogRecord:
    attrs = {"method": "visa", "outcome": "declined"}
    if customer is not None:
        attrs["customer_id"] = customer
    return LogRecord(
        time_unix_ns=int((NOW - 20 + i * 0.1) * NS),
        level="info",
        body="payment declined",
        service="payment-api",
        trace_id=f"{i:032x}",
        attributes=attrs,
    )


def _telemetry(tester: str | None, tester_declines: int, others: int) -> InMemorySources:
    """``tester_declines`` declined checkouts of ``tester`` among ``others`` declined checkouts
    of distinct ordinary customers and 200 successful ones."""
    sources = InMemorySources()
    people = [(tester, i) for i in range(tester_declines)] + [
        (f"cus_{n:010x}", tester_declines + n) for n in range(others)
    ]
    sources.add_spans(_checkout(i, who, "declined") for who, i in people)
    sources.add_spans(_checkout(1000 + n, f"cus_{n:010x}", "succeeded") for n in range(200))
    sources.add_logs(_declined_log(i, who) for who, i in people)
    return sources


def _culprit_checks() -> list[tuple[str, object]]:
    loaded = load_scenario(SCENARIO)
    return [
        (exp.signal, build_check(exp))
        for exp in loaded.scenario.expectations
        if isinstance(exp, CulpritExpectation)
    ]


WINDOW = Window(since_unix_s=NOW - 60)


def test_culprit_holds_when_the_telemetry_names_the_injected_customer() -> None:
    for signal, check in _culprit_checks():
        obs = check.observe(_ctx(_telemetry(TESTER, 70, 6)), WINDOW)  # type: ignore[attr-defined]
        assert obs.seen, signal
        assert f"culprit: customer {TESTER}, 70 of 76 declined checkouts" in obs.detail


def test_culprit_fails_when_the_customer_attribute_is_missing() -> None:
    for signal, check in _culprit_checks():
        obs = check.observe(_ctx(_telemetry(None, 70, 6)), WINDOW)  # type: ignore[attr-defined]
        assert not obs.seen, signal
        # only the 6 ordinary customers carry the attribute: one of them is named, wrongly
        assert f"culprit: customer {TESTER}" not in obs.detail
        assert f"wrong customer: the run injected {TESTER}" in obs.detail


def test_culprit_fails_with_nothing_named_at_all() -> None:
    sources = InMemorySources()
    sources.add_spans(_checkout(i, None, "declined") for i in range(50))
    sources.add_logs(_declined_log(i, None) for i in range(50))
    for signal, check in _culprit_checks():
        obs = check.observe(_ctx(sources), WINDOW)  # type: ignore[attr-defined]
        assert not obs.seen and "no culprit: none of 50" in obs.detail, signal


def test_culprit_fails_naming_the_wrong_customer_when_another_dominates() -> None:
    intruder = "cus_0badc0de00"
    for signal, check in _culprit_checks():
        obs = check.observe(_ctx(_telemetry(intruder, 70, 6)), WINDOW)  # type: ignore[attr-defined]
        assert not obs.seen, signal
        assert f"culprit: customer {intruder}" in obs.detail
        assert f"wrong customer: the run injected {TESTER}" in obs.detail


def test_culprit_fails_when_the_tester_does_not_dominate_or_nothing_was_injected() -> None:
    for signal, check in _culprit_checks():
        # 9 declines of the tester among 30 declines (tester first, others once each)
        obs = check.observe(_ctx(_telemetry(TESTER, 9, 21)), WINDOW)  # type: ignore[attr-defined]
        assert not obs.seen and "need 10+" in obs.detail, signal
        obs = check.observe(_ctx(_telemetry(TESTER, 70, 6), None), WINDOW)  # type: ignore[attr-defined]
        assert not obs.seen and "no injected customer" in obs.detail, signal


def test_the_culprit_shows_in_the_matrix_trace_column() -> None:
    rec = RunRecord("card-testing", "", "x.yaml", status="passed")
    rec.expectations.append(
        ExpectationRecord(
            name="the spans name the card tester",
            type="culprit",
            description="",
            mode="eventually",
            after="card-tester",
            within_s=25,
            status="passed",
            detail=f"culprit: customer {TESTER}, 70 of 76 declined checkouts",
            detected_s=6.0,
            floor_s=0.5,
        )
    )
    rec.expectations[0].signal = "trace"
    cell = row_of(rec).cells["trace"]
    assert cell.state == "detected" and cell.detected_s == 6.0
    rec.expectations[0].signal = "log"
    row = row_of(rec)
    assert row.cells["log"].state == "detected" and row.cells["trace"].state == "not_checked"


def test_the_culprit_floor_waits_for_its_declines_at_the_testers_rate() -> None:
    exp = next(
        e
        for e in load_scenario(SCENARIO).scenario.expectations
        if isinstance(e, CulpritExpectation)
    )
    # the first attempt at the injection, the min_count-th (min_count - 1) / rate later
    assert culprit_floor_s(exp, 4.0) == pytest.approx((exp.min_count - 1) / 4.0)
    assert culprit_floor_s(exp, None) == 0.0


# ------------------------------------------------------------------ the driver


class _Shop(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append(body)
        answer = json.dumps(
            {"id": f"pay_{len(self.bodies)}", "status": "succeeded", "method": body["method"]}
        ).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


def test_the_driver_runs_a_bounded_card_tester_among_the_shoppers(tmp_path: Path) -> None:
    _Shop.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Shop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/checkout"
        driver = AsyncTrafficDriver(url, ledger_dir=tmp_path, seed=7)
        with pytest.raises(FaultInjectionFailed, match="traffic running"):
            driver.start_card_testing("t", rate_per_s=10, duration_s=1.5)
        driver.start(Traffic(rate_per_s=5, duration_s=4, rum=False))
        time.sleep(0.5)
        facts = driver.start_card_testing("t", rate_per_s=10, duration_s=1.5, cards=5)
        time.sleep(2.5)
        counts = driver.stop_actor("t")
        driver.stop()
    finally:
        server.shutdown()
        server.server_close()
    tester = [b for b in _Shop.bodies if b["customer"]["id"] == facts["customer_id"]]  # type: ignore[index]
    # at most rate x duration (15), then it stops by itself (fewer only if the loop lagged)
    assert counts["attempts"] == len(tester) and 10 <= len(tester) <= 15
    assert len({b["payment"]["card_token"] for b in tester}) == 5  # type: ignore[index]
    assert len(_Shop.bodies) > len(tester)  # hidden among the shoppers
    assert all(not re.search(r"\d{13,19}", json.dumps(b)) for b in _Shop.bodies)
