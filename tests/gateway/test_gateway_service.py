"""The real gateway process, driven over HTTP on a loopback port."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import (
    REPO,
    GatewayProcess,
    Reply,
    charge_body,
    http_call,
    no_declines_profiles,
    running_gateway,
)


@pytest.fixture(autouse=True)
def _revert_behaviours(gateway: GatewayProcess) -> Iterator[None]:
    yield
    gateway.admin("DELETE", "/admin/behaviours")


def key() -> str:
    return f"key-{uuid.uuid4()}"


def metric_value(text: str, name: str, labels: dict[str, str]) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if found == labels:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_success_body(gateway: GatewayProcess) -> None:
    k = key()
    body = charge_body("visa", amount_cents=2500, currency="eur")
    reply = gateway.charge(k, body)
    assert reply.status == 201, reply.body
    charge = reply.body
    assert re.fullmatch(r"ch_[0-9a-f]{24}", charge["id"])
    assert charge["status"] == "succeeded"
    assert charge["amount_cents"] == 2500
    assert charge["currency"] == "EUR"
    assert charge["method"] == "visa"
    assert charge["payment_id"] == body["payment_id"]
    assert charge["idempotency_key"] == k
    assert isinstance(charge["created_at"], float)
    assert "idempotent-replayed" not in reply.headers
    fetched = gateway.call("GET", f"/v1/charges/{charge['id']}")
    assert fetched.status == 200
    assert fetched.body["attempts"] == 1


@pytest.mark.parametrize(
    ("method", "source", "code"),
    [
        ("visa", {"card_token": "tok_decline", "last4": "0002"}, "do_not_honor"),
        ("amex", {"card_token": "tok_insufficient_funds"}, "insufficient_funds"),
        ("paypal", {"payer_email": "someone@decline.test"}, "instrument_declined"),
    ],
)
def test_magic_values_decline(
    gateway: GatewayProcess, method: str, source: dict[str, str], code: str
) -> None:
    reply = gateway.charge(key(), charge_body(method, source=source))
    assert reply.status == 402
    assert reply.body["status"] == "declined"
    assert reply.body["decline_code"] == code


def test_idempotent_replay_returns_first_response(gateway: GatewayProcess) -> None:
    k = key()
    body = charge_body("paypal")
    first = gateway.charge(k, body)
    second = gateway.charge(k, body)
    assert first.status == second.status == 201
    assert second.body == first.body
    assert second.headers.get("idempotent-replayed") == "true"
    listed = gateway.call("GET", f"/v1/charges?idempotency_key={k}")
    assert [c["id"] for c in listed.body["data"]] == [first.body["id"]]
    assert listed.body["data"][0]["attempts"] == 2


def test_declined_replay_keeps_402(gateway: GatewayProcess) -> None:
    k = key()
    body = charge_body("visa", source={"card_token": "tok_decline"})
    assert gateway.charge(k, body).status == 402
    again = gateway.charge(k, body)
    assert again.status == 402
    assert again.headers.get("idempotent-replayed") == "true"


def test_same_key_other_parameters_is_422(gateway: GatewayProcess) -> None:
    k = key()
    body = charge_body("visa")
    assert gateway.charge(k, body).status == 201
    reply = gateway.charge(k, {**body, "amount_cents": 1})
    assert reply.status == 422
    assert reply.body["error"]["type"] == "idempotency_error"
    listed = gateway.call("GET", f"/v1/charges?idempotency_key={k}")
    assert len(listed.body["data"]) == 1


def test_same_key_while_in_flight_is_409(gateway: GatewayProcess) -> None:
    gateway.behaviour(method="amex", added_latency_ms=1500)
    k = key()
    body = charge_body("amex")
    results: list[Reply] = []
    first = threading.Thread(target=lambda: results.append(gateway.charge(k, body)))
    first.start()
    try:
        time.sleep(0.4)
        concurrent = gateway.charge(k, body)
    finally:
        first.join(timeout=10)
    assert concurrent.status == 409
    assert concurrent.body["error"]["type"] == "idempotency_error"
    assert results and results[0].status == 201
    replay = gateway.charge(k, body)
    assert replay.status == 201
    assert replay.body["id"] == results[0].body["id"]


def test_retry_after_injected_503_is_processed_afresh(gateway: GatewayProcess) -> None:
    behaviour_id = gateway.behaviour(method="visa", error_rate=1.0, error_status=503)
    k = key()
    body = charge_body("visa")
    failed = gateway.charge(k, body)
    assert failed.status == 503
    assert failed.body["error"]["type"] == "api_error"
    assert gateway.call("GET", f"/v1/charges?idempotency_key={k}").body["data"] == []
    assert gateway.admin("DELETE", f"/admin/behaviours/{behaviour_id}").status == 200
    retried = gateway.charge(k, body)
    assert retried.status == 201
    assert "idempotent-replayed" not in retried.headers
    listed = gateway.call("GET", f"/v1/charges?idempotency_key={k}").body["data"]
    assert len(listed) == 1
    assert listed[0]["attempts"] == 2


def test_admin_requires_bearer_token(gateway: GatewayProcess) -> None:
    assert gateway.admin("GET", "/admin/behaviours", token=None).status == 401
    assert gateway.admin("GET", "/admin/behaviours", token="wrong").status == 401
    payload = {"method": "visa", "error_rate": 1, "ttl_s": 30}
    denied = gateway.admin("POST", "/admin/behaviours", payload, token="wrong")
    assert denied.status == 401
    assert gateway.admin("GET", "/admin/behaviours").body["data"] == []


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"method": "visa"}, "ttl_s"),
        ({"method": "visa", "ttl_s": 0}, "ttl_s"),
        ({"method": "visa", "ttl_s": 4000}, "ttl_s"),
        ({"method": "bitcoin", "ttl_s": 5}, "method"),
        ({"ttl_s": 5}, "method"),
        ({"method": "visa", "ttl_s": 5, "error_rate": 1.5}, "error_rate"),
        ({"method": "visa", "ttl_s": 5, "error_status": 418}, "error_status"),
        ({"method": "visa", "ttl_s": 5, "timeout_rate": "all"}, "timeout_rate"),
        ({"method": "visa", "ttl_s": 5, "decline_rate": -0.1}, "decline_rate"),
        ({"method": "visa", "ttl_s": 5, "ignore_idempotency": "yes"}, "ignore_idempotency"),
        ({"method": "visa", "ttl_s": 5, "colour": "red"}, "colour"),
        ([1, 2], "body"),
    ],
)
def test_admin_validation_names_the_field(
    gateway: GatewayProcess, payload: Any, param: str
) -> None:
    reply = gateway.admin("POST", "/admin/behaviours", payload)
    assert reply.status == 400, reply.body
    assert reply.body["error"]["type"] == "invalid_request_error"
    assert reply.body["error"]["param"] == param


def test_error_rate_on_paypal_spares_visa(gateway: GatewayProcess) -> None:
    gateway.behaviour(method="paypal", error_rate=1.0, error_status=502)
    for _ in range(5):
        assert gateway.charge(key(), charge_body("paypal")).status == 502
        assert gateway.charge(key(), charge_body("visa")).status == 201
    metrics = gateway.metrics()
    active = {"fault": "gateway_errors", "target": "gateway/paypal"}
    assert metric_value(metrics, "chaos_fault_active", active) == 1.0
    error_count = metric_value(
        metrics, "gateway_charges_total", {"method": "paypal", "outcome": "error"}
    )
    assert error_count is not None and error_count >= 5


def test_timeout_rate_hangs_until_client_gives_up(gateway: GatewayProcess) -> None:
    gateway.behaviour(method="crypto", timeout_rate=1.0, ttl_s=30)
    with pytest.raises((TimeoutError, socket.timeout)):
        gateway.charge(key(), charge_body("crypto"), timeout_s=0.5)
    # Reverting releases the hung request with a 504 (counted as a timeout).
    assert gateway.admin("DELETE", "/admin/behaviours").body["deleted"] == 1
    labels = {"method": "crypto", "outcome": "timeout"}
    for _ in range(50):
        if (metric_value(gateway.metrics(), "gateway_charges_total", labels) or 0) >= 1:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the hung request was not released after the behaviour was deleted")
    assert gateway.charge(key(), charge_body("crypto")).status in (201, 402)


def test_behaviour_expires_by_itself(gateway: GatewayProcess) -> None:
    gateway.behaviour(method="visa", error_rate=1.0, ttl_s=1)
    assert gateway.charge(key(), charge_body("visa")).status == 503
    time.sleep(1.5)
    assert gateway.charge(key(), charge_body("visa")).status == 201
    assert gateway.admin("GET", "/admin/behaviours").body["data"] == []
    active = {"fault": "gateway_errors", "target": "gateway/visa"}
    assert metric_value(gateway.metrics(), "chaos_fault_active", active) == 0.0


def test_list_behaviours_shows_remaining_seconds(gateway: GatewayProcess) -> None:
    behaviour_id = gateway.behaviour(method="*", added_latency_ms=1, ttl_s=60)
    listed = gateway.admin("GET", "/admin/behaviours").body["data"]
    assert [b["id"] for b in listed] == [behaviour_id]
    assert 55 < listed[0]["remaining_s"] <= 60
    assert listed[0]["target"] == "gateway/*"
    assert gateway.admin("DELETE", "/admin/behaviours/bh_nope").status == 404


def test_ignore_idempotency_double_charges(gateway: GatewayProcess) -> None:
    before = gateway.call("GET", "/v1/ledger/summary").body["duplicate_charges"]
    gateway.behaviour(method="amex", ignore_idempotency=True, decline_rate=0.0)
    k = key()
    body = charge_body("amex")
    first = gateway.charge(k, body)
    second = gateway.charge(k, body)
    assert first.status == second.status == 201
    assert first.body["id"] != second.body["id"]
    summary = gateway.call("GET", "/v1/ledger/summary").body
    assert summary["duplicate_charges"] == before + 1
    active = {"fault": "gateway_double_charge", "target": "gateway/amex"}
    assert metric_value(gateway.metrics(), "chaos_fault_active", active) == 1.0


def test_ledger_query_paginates_oldest_first(gateway: GatewayProcess) -> None:
    payment_id = f"pay-page-{uuid.uuid4()}"
    ids = []
    for _ in range(5):
        body = charge_body("visa", payment_id=payment_id, source={"card_token": "tok_decline"})
        ids.append(gateway.charge(key(), body).body["id"])
    seen: list[str] = []
    after = ""
    for _ in range(5):
        page = gateway.call(
            "GET", f"/v1/charges?payment_id={payment_id}&status=declined&limit=2{after}"
        ).body
        seen += [c["id"] for c in page["data"]]
        if not page["has_more"]:
            break
        after = f"&after={page['next_after']}"
    assert seen == ids
    assert gateway.call("GET", "/v1/charges?limit=0").body["error"]["param"] == "limit"
    assert gateway.call("GET", "/v1/charges?method=cash").body["error"]["param"] == "method"
    assert gateway.call("GET", "/v1/charges?after=ch_nope").body["error"]["param"] == "after"
    assert gateway.call("GET", "/v1/charges/ch_nope").status == 404
    summary = gateway.call("GET", "/v1/ledger/summary").body
    assert summary["by_method"]["visa"]["declined"]["count"] >= 5


def test_metrics_exposition(gateway: GatewayProcess) -> None:
    gateway.charge(key(), charge_body("visa"))
    text = gateway.metrics()
    assert 'gateway_charges_total{method="visa",outcome="succeeded"}' in text
    assert 'gateway_charge_duration_seconds_bucket{le="0.005",method="visa"}' in text
    assert 'gateway_charge_duration_seconds_bucket{le="10.0",method="crypto"}' in text
    assert 'chaos_fault_active{fault="gateway_timeouts",target="gateway/*"} 0.0' in text
    assert "process_resident_memory_bytes" in text
    assert "_created" not in text


@pytest.mark.parametrize(
    ("body", "headers", "param"),
    [
        (b"{not json", {"Idempotency-Key": "bad-1"}, "body"),
        (b"[]", {"Idempotency-Key": "bad-2"}, "body"),
        (charge_body("visa"), {}, "Idempotency-Key"),
        (charge_body("visa"), {"Idempotency-Key": "k" * 256}, "Idempotency-Key"),
        (
            {**charge_body("visa"), "amount_cents": "12"},
            {"Idempotency-Key": "bad-3"},
            "amount_cents",
        ),
        ({**charge_body("visa"), "amount_cents": 0}, {"Idempotency-Key": "bad-4"}, "amount_cents"),
        ({**charge_body("visa"), "currency": "EURO"}, {"Idempotency-Key": "bad-5"}, "currency"),
        ({**charge_body("visa"), "method": "cash"}, {"Idempotency-Key": "bad-6"}, "method"),
        ({**charge_body("visa"), "source": {}}, {"Idempotency-Key": "bad-7"}, "source.card_token"),
        (
            {**charge_body("paypal"), "source": {"payer_email": "nope"}},
            {"Idempotency-Key": "bad-8"},
            "source.payer_email",
        ),
        ({**charge_body("visa"), "payment_id": None}, {"Idempotency-Key": "bad-9"}, "payment_id"),
        ({**charge_body("visa"), "tip": 5}, {"Idempotency-Key": "bad-10"}, "tip"),
    ],
)
def test_bad_charge_request_is_400_naming_the_field(
    gateway: GatewayProcess, body: Any, headers: dict[str, str], param: str
) -> None:
    reply = http_call(gateway.port, "POST", "/v1/charges", body, headers)
    assert reply.status == 400, reply.body
    assert reply.body["error"] == {
        "type": "invalid_request_error",
        "param": param,
        "message": reply.body["error"]["message"],
    }


def test_unknown_route_and_method_are_json(gateway: GatewayProcess) -> None:
    assert gateway.call("GET", "/v2/nothing").status == 404
    wrong = gateway.call("PUT", "/v1/charges")
    assert wrong.status == 405
    assert wrong.body["error"]["type"] == "invalid_request_error"


def test_no_card_token_or_email_in_logs(gateway: GatewayProcess) -> None:
    gateway.behaviour(method="*", decline_rate=1.0)
    secret_token = "tok_visa_SECRETMARK91"
    secret_email = "secretbuyer77@example.com"
    gateway.charge(key(), charge_body("visa", source={"card_token": secret_token, "last4": "4242"}))
    gateway.charge(key(), charge_body("paypal", source={"payer_email": secret_email}))
    pan = "4111111111111111"
    gateway.charge(key(), charge_body("visa", source={"card_token": pan}))
    gateway.admin("DELETE", "/admin/behaviours")
    gateway.charge(key(), charge_body("amex", source={"card_token": secret_token}))
    time.sleep(0.2)
    logs = gateway.stderr()
    assert '"card_last4":"4242"' in logs
    assert "SECRETMARK91" not in logs
    assert "secretbuyer77" not in logs
    assert pan not in logs


def test_ledger_survives_kill_9_and_restart(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    profiles = str(no_declines_profiles(tmp_path))
    args = ("--latency-scale", "0", "--ledger", str(ledger), "--profiles", profiles)
    body = charge_body("visa")
    with running_gateway(*args, stderr_path=tmp_path / "one.log") as first:
        created = first.charge("persist-1", body)
        assert created.status == 201
        assert first.charge("persist-1", body).status == 201
        declined = first.charge(
            "persist-2", charge_body("visa", source={"card_token": "tok_decline"})
        )
        assert declined.status == 402
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(timeout=5)
    with running_gateway(*args, stderr_path=tmp_path / "two.log") as second:
        fetched = second.call("GET", f"/v1/charges/{created.body['id']}")
        assert fetched.status == 200
        assert fetched.body["attempts"] == 2
        summary = second.call("GET", "/v1/ledger/summary").body
        assert summary["total_charges"] == 2
        replay = second.charge("persist-1", body)
        assert replay.status == 201
        assert replay.headers.get("idempotent-replayed") == "true"
        assert replay.body == created.body
        assert second.call("GET", f"/v1/charges/{created.body['id']}").body["attempts"] == 3
        second.proc.terminate()
        second.proc.wait(timeout=10)  # SIGTERM: a clean, prompt exit


def test_bad_profiles_file_exits_non_zero(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text("crypto:\n  latency_sigma: -1\n", encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "paychaos.stack.gateway",
            "--port",
            "1",
            "--profiles",
            str(profiles),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "crypto.latency_sigma" in done.stderr
    assert "Traceback" not in done.stderr
