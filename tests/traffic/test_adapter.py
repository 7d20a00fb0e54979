"""The checkout adapter: requests for the built-in API and a foreign one, outcomes, secrets.

The end-to-end test starts the foreign shop (``tests/foreign/shop_api.py``) as
a subprocess on loopback and checks what the client classified against the
shop's own read-back and its ``shop_payments_total``.

Cost of a request build (``bench/bench_adapter.py``)::

    PYTHONPATH=. .venv/bin/python bench/bench_adapter.py
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from paychaos.contracts.errors import InvalidTarget
from paychaos.contracts.target import Checkout, CheckoutAdapter, SecretRef, Target
from paychaos.stack.api.models import IDEMPOTENCY_KEY, CheckoutRequest
from paychaos.traffic.adapter import (
    FINAL,
    Answer,
    Cart,
    CheckoutClient,
    PreparedRequest,
    Verdict,
    cents,
)
from paychaos.traffic.model import ShopperModel, shopper_model
from tests.foreign.testkit import ShopApi, run_shop_api

URL = "http://127.0.0.1:8000"
METHODS = ("visa", "paypal", "amex", "crypto")

#: The foreign shop as a team would describe it in a target file.
FOREIGN_TARGET: dict[str, Any] = {
    "name": "foreign-shop",
    "checkout": {
        "url": URL,
        "adapter": {
            "method": "PUT",
            "path": "/v2/orders/{key}/payment",
            "headers": {"X-Api-Key": {"env": "SHOP_API_KEY"}},
            "idempotency_header": None,
            "body": {
                "total": {"cents": "{amount_cents}", "ccy": "{currency}"},
                "paymentMethod": "{method}",
                "buyer": "{customer}",
                "lines": "{items}",
                "note": "order {key}: {amount} {currency}",
            },
            "outcomes": {
                "charged": [{"status": 200, "pointer": "/state", "equals": "PAID"}],
                "declined": [{"status": 200, "pointer": "/state", "equals": "REFUSED"}],
                "invalid": [{"status": 400}, {"status": 409}],
                "retry": [{"status": 503}],
            },
            "payment_id": "/ref",
            "read_back": {
                "path": "/v2/payments/{id}",
                "status_pointer": "/state",
                "charged_values": ["PAID"],
            },
        },
    },
}


def foreign_checkout(url: str = URL, **adapter: Any) -> Checkout:
    raw = orjson.loads(orjson.dumps(FOREIGN_TARGET))  # a deep copy
    raw["checkout"]["url"] = url
    raw["checkout"]["adapter"].update(adapter)
    return Target.model_validate(raw).checkout


def sample_cart(key: str = "chk-test-0001") -> Cart:
    return Cart(
        key=key,
        method="visa",
        amount_cents=1900,
        currency="USD",
        customer={"id": "cus_42", "email": "ana@example.com", "name": 'Ana "Q" Diaz'},
        items=[{"sku": "SKU-1", "name": "Mug", "quantity": 2, "unit_price": "9.50"}],
        payment={"card_token": "tok_visa_1a2b3c4d5e6f", "last4": "4242"},
        order_id="ord_1",
    )


def adapter_client(**adapter: Any) -> CheckoutClient:
    return CheckoutClient(
        Checkout(url=URL, adapter=CheckoutAdapter.model_validate(adapter)), environ={}
    )


# ---------------------------------------------------------------- the built-in API


def test_builtin_body_is_accepted_by_the_builtin_api() -> None:
    """The shopper model's carts (regular and declining cards) go out as bodies the
    built-in API's model accepts, spliced or serialised alike."""
    client = CheckoutClient(Checkout(url=URL + "/"), environ={})
    rng = random.Random(3)
    shoppers = ShopperModel(seed=5, decline_rate=0.5, pool_size=16, declined_size=8)
    carts = [
        shoppers.purchase(rng, m).cart(f"chk-builtin-{i:04d}") for i, m in enumerate(METHODS * 10)
    ]
    for cart in carts:
        body = cart.builtin_body()
        req = client.request(cart)
        assert orjson.loads(req.body) == body  # the splice is the serialisation
        assert (req.method, req.url) == ("POST", URL + "/api/checkout")
        assert req.headers["Content-Type"] == "application/json"
        assert req.headers["Idempotency-Key"] == cart.key
        assert IDEMPOTENCY_KEY.match(req.headers["Idempotency-Key"])
        sent = CheckoutRequest.model_validate_json(req.body)
        assert sent == CheckoutRequest.model_validate(body)  # nothing lost or changed
        assert sent.amount_cents == cart.amount_cents


def test_builtin_outcomes_and_payment_ids() -> None:
    client = CheckoutClient(Checkout(url=URL), environ={})
    paid = b'{"id":"6b1f","status":"succeeded"}'
    assert client.interpret(201, paid) == Answer("charged", "6b1f")
    assert client.interpret(402, b'{"id":"7c2a","status":"declined"}') == Answer("declined", "7c2a")
    for status in (400, 413, 422):
        assert client.classify(status, b"{}") == "invalid"
    for status in (409, 502, 503, 504):  # 409: the same key is still in progress
        assert client.classify(status, b"{}") == "retry"
    for status in (0, 200, 500):
        assert client.classify(status, paid) == "unknown"
    problem = b'{"type":"x","status":504,"payment_id":"9d3e","payment_status":"unknown"}'
    assert client.interpret(504, problem) == Answer("retry", "9d3e")  # the problem's payment_id
    assert client.read_back is not None
    assert client.read_back.url("6b1f") == URL + "/api/payments/6b1f"
    assert client.read_back.charged(200, paid)
    assert not client.read_back.charged(200, b'{"status":"declined"}')
    assert client.read_back.state(404, b'{"title":"Payment not found"}') is None


# ---------------------------------------------------------------- templates


def test_foreign_template_produces_the_exact_json() -> None:
    client = CheckoutClient(foreign_checkout(), environ={"SHOP_API_KEY": "k-123"})
    req = client.request(sample_cart("chk-test-0001"))
    expected = {
        "total": {"cents": 1900, "ccy": "USD"},
        "paymentMethod": "visa",
        "buyer": {"id": "cus_42", "email": "ana@example.com", "name": 'Ana "Q" Diaz'},
        "lines": [{"sku": "SKU-1", "name": "Mug", "quantity": 2, "unit_price": "9.50"}],
        "note": "order chk-test-0001: 19.00 USD",
    }
    assert req.body == orjson.dumps(expected)  # byte for byte: types, order, escaping
    assert req.method == "PUT"
    assert req.url == URL + "/v2/orders/chk-test-0001/payment"
    assert dict(req.headers) == {"Content-Type": "application/json", "X-Api-Key": "k-123"}


def test_placeholders_in_text_keys_lists_and_the_path() -> None:
    client = adapter_client(
        path="/pay/{key}",
        body={
            "{method}_total": "{amount}",
            "memo": 'cents={amount_cents} for {customer} "{currency}"',
            "nested": [{"k": "{key}"}, ["{amount_cents}", 3, None, True, 1.5], {}],
            "literal": "{ not a placeholder } {}",
        },
    )
    cart = sample_cart("chk/with space:1")
    req = client.request(cart)
    body = orjson.loads(req.body)
    assert body == {
        "visa_total": "19.00",
        "memo": 'cents=1900 for {"id":"cus_42","email":"ana@example.com",'
        '"name":"Ana \\"Q\\" Diaz"} "USD"',
        "nested": [{"k": "chk/with space:1"}, [1900, 3, None, True, 1.5], {}],
        "literal": "{ not a placeholder } {}",
    }
    assert req.url == URL + "/pay/chk%2Fwith%20space%3A1"
    assert req.headers["Idempotency-Key"] == "chk/with space:1"
    assert adapter_client(body={"fixed": [1, "a"]}).body(cart) == b'{"fixed":[1,"a"]}'


@pytest.mark.parametrize(
    ("adapter", "named"),
    [
        ({"body": {"total": "{amont}"}}, ["{amont}", "checkout.adapter.body.total"]),
        ({"body": {"a": [1, {"b": "x {nope} y"}]}}, ["{nope}", "checkout.adapter.body.a[1].b"]),
        ({"body": {"{bad}": 1}}, ["{bad}"]),
        ({"path": "/orders/{kye}"}, ["{kye}", "checkout.adapter.path"]),
        ({"path": "/orders/{method}"}, ["{method}", "placeholders: {key}"]),
        ({"read_back": {"path": "/p/{key}"}}, ["{key}", "checkout.adapter.read_back.path"]),
        ({"body": {"n": 2**70}}, ["checkout.adapter.body", "not JSON"]),
        ({"body": {"x": {1: "a"}}}, ["object keys are strings"]),
    ],
)
def test_a_bad_template_is_refused_before_any_load(
    adapter: dict[str, Any], named: list[str]
) -> None:
    with pytest.raises(InvalidTarget) as info:
        adapter_client(**adapter)
    for part in named:
        assert part in str(info.value)


def test_cart_amounts() -> None:
    assert cents("19.00") == 1900
    assert cents("19.5") == 1950
    assert cents("7") == 700
    for bad in ("19.999", "abc", "NaN"):
        with pytest.raises(ValueError):
            cents(bad)
    cart = shopper_model(seed=1).purchase(random.Random(1), "paypal").cart("chk-1")
    assert cart.amount == f"{cart.amount_cents // 100}.{cart.amount_cents % 100:02d}"
    assert cart.amount_cents == sum(cents(i["unit_price"]) * i["quantity"] for i in cart.items)


# ---------------------------------------------------------------- outcomes

RULES: dict[str, Any] = {
    "charged": [
        {"status": 200, "pointer": "/state", "equals": "PAID"},
        {"status": 201},
    ],
    "declined": [
        {"status": 200, "pointer": "/state", "equals": "REFUSED"},
        {"pointer": "/error/code", "equals": "card_declined"},  # any status
    ],
    "invalid": [{"status": 400}, {"pointer": "/a~1b/~0c", "equals": 7}],
    "retry": [
        {"status": 503},
        {"pointer": "/retryable", "equals": True},
        {"pointer": "/attempts/0/code", "equals": 1.0},
    ],
}


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, b'{"state":"PAID"}', "charged"),  # status and pointer
        (201, b"not json at all", "charged"),  # status only: the body is not read
        (200, b'{"state":"REFUSED"}', "declined"),
        (202, b'{"state":"PAID"}', "unknown"),  # pointer matches, status does not
        (200, b'{"state":"PENDING"}', "unknown"),
        (400, b'{"error":{"code":"card_declined"}}', "declined"),  # declined before invalid
        (402, b'{"error":{"code":"card_declined"}}', "declined"),  # pointer-only: any status
        (400, b"{}", "invalid"),
        (422, b'{"a/b":{"~c":7}}', "invalid"),  # RFC 6901 escapes ~1 and ~0
        (422, b'{"a/b":{"~c":"7"}}', "unknown"),  # "7" is not 7
        (503, b"", "retry"),
        (500, b'{"retryable":true}', "retry"),
        (500, b'{"retryable":1}', "unknown"),  # 1 is not true
        (500, b'{"attempts":[{"code":1}]}', "retry"),  # 1 equals 1.0 (numbers)
        (500, b'{"attempts":{"0":{"code":1}}}', "retry"),  # "0" names an object member too
        (500, b'{"attempts":[]}', "unknown"),
        (200, b"PAID", "unknown"),  # not JSON: no pointer rule matches
        (200, b"", "unknown"),
        (200, b'["state","PAID"]', "unknown"),
        (0, b'{"state":"PAID","retryable":true}', "unknown"),  # transport error
        (200, b'{"state":"PAID","error":{"code":"card_declined"}}', "charged"),  # order
    ],
)
def test_classification_follows_the_rules(status: int, body: bytes, verdict: Verdict) -> None:
    client = adapter_client(body={"x": "{key}"}, outcomes=RULES, payment_id="/ref")
    assert client.classify(status, body) == verdict
    assert client.interpret(status, body).outcome == verdict


def test_array_pointers_and_payment_ids() -> None:
    client = adapter_client(
        body={"x": "{key}"},
        outcomes={"charged": [{"pointer": "/items/1/s", "equals": "ok"}]},
        payment_id="/data/0/id",
    )
    assert client.classify(200, b'{"items":[{"s":"no"},{"s":"ok"}]}') == "charged"
    assert client.classify(200, b'{"items":[{"s":"ok"}]}') == "unknown"  # out of range
    assert client.classify(200, b'{"items":{"01":{"s":"ok"}}}') == "unknown"
    assert client.payment_id(b'{"data":[{"id":"pay_1"}]}') == "pay_1"
    assert client.payment_id(b'{"data":[{"id":42}]}') == "42"
    for body in (
        b'{"data":[]}',
        b'{"data":[{"id":null}]}',
        b"<html>",
        b"",
        b'{"data":[{"id":true}]}',
    ):
        assert client.payment_id(body) is None
    assert client.interpret(200, b'{"data":[{"id":"p"}],"items":[0,{"s":"ok"}]}') == Answer(
        "charged", "p"
    )
    no_id = adapter_client(body={"x": "{key}"}, payment_id=None)
    assert no_id.payment_id(b'{"id":"x"}') is None


def test_read_back_of_a_foreign_adapter() -> None:
    client = CheckoutClient(foreign_checkout(), environ={"SHOP_API_KEY": "k-1"})
    rb = client.read_back
    assert rb is not None
    req = rb.request("pay/1")
    assert (req.method, req.url, req.body) == ("GET", URL + "/v2/payments/pay%2F1", b"")
    assert dict(req.headers) == {"X-Api-Key": "k-1"}
    assert rb.charged(200, b'{"state":"PAID"}')
    assert not rb.charged(200, b'{"state":"REFUSED"}')
    assert not rb.charged(500, b'{"state":"PAID"}')
    assert rb.state(200, b"oops") is None
    flags = adapter_client(
        body={"x": "{key}"},
        read_back={"path": "/p/{id}", "status_pointer": "/paid", "charged_values": ["true"]},
    ).read_back
    assert flags is not None and flags.charged(200, b'{"paid":true}')
    assert not flags.charged(200, b'{"paid":"yes"}')
    assert adapter_client(body={"x": "{key}"}).read_back is None  # a template, no read_back


# ---------------------------------------------------------------- secrets


def test_a_missing_secret_names_the_variable_never_a_value() -> None:
    checkout = foreign_checkout(
        headers={"X-Api-Key": {"env": "SHOP_API_KEY"}, "X-Tenant": {"env": "SHOP_TENANT"}}
    )
    environ = {"SHOP_API_KEY": "s3cret-value-0042"}
    with pytest.raises(InvalidTarget) as info:
        CheckoutClient(checkout, environ)
    message = str(info.value)
    assert "SHOP_TENANT" in message and "X-Tenant" in message
    assert "s3cret-value-0042" not in message
    with pytest.raises(InvalidTarget, match="SHOP_TENANT"):
        CheckoutClient(checkout, {**environ, "SHOP_TENANT": ""})  # empty is unset


def test_secret_values_are_sent_but_never_printed(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-secret-77\n")
    checkout = foreign_checkout(
        headers={
            "X-Api-Key": {"env": "SHOP_API_KEY"},
            "Authorization": {"file": str(token_file)},
            "X-Client": "paychaos",
        }
    )
    client = CheckoutClient(checkout, {"SHOP_API_KEY": "env-secret-55"})
    req = client.request(sample_cart())
    assert req.headers["X-Api-Key"] == "env-secret-55"
    assert req.headers["Authorization"] == "file-secret-77"
    assert req.headers["X-Client"] == "paychaos"
    assert client.read_back is not None
    read = client.read_back.request("p1")
    printed = [repr(client), repr(req), str(req), f"{req}", repr(req.headers), str(req.headers)]
    printed += [repr(read), str(read.headers), repr(client.read_back)]
    shown = " ".join(printed)
    for secret in ("env-secret-55", "file-secret-77"):
        assert secret not in shown
    assert "<secret>" in repr(req) and "'X-Client': 'paychaos'" in repr(req)
    with pytest.raises(InvalidTarget) as info:
        CheckoutClient(checkout, {"SHOP_API_KEY": "bad\r\nX-Evil: 1"})
    assert "SHOP_API_KEY" in str(info.value) and "Evil" not in str(info.value)


def test_a_secret_is_only_ever_a_reference() -> None:
    adapter = CheckoutAdapter.model_validate({"headers": {"X-Api-Key": {"env": "TOKEN"}}})
    ref = adapter.headers["X-Api-Key"]
    assert isinstance(ref, SecretRef) and ref.describe() == "$TOKEN"
    client = CheckoutClient(Checkout(url=URL, adapter=adapter), {"TOKEN": "tok-9"})
    assert client.request(sample_cart()).headers["X-Api-Key"] == "tok-9"


# ---------------------------------------------------------------- end to end

LIMIT_CENTS = 5_000  # the foreign shop refuses totals above this (its --limit-cents)


async def _send(
    client: CheckoutClient, carts: list[Cart], statuses: Counter[int], *, attempts: int = 6
) -> dict[str, Answer]:
    """Each cart until a final verdict or ``attempts``; same key on every retry. Bounded."""
    answers: dict[str, Answer] = {}
    gate = asyncio.Semaphore(8)
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(cart: Cart) -> None:
            async with gate:
                for _ in range(attempts):
                    req = client.request(cart)
                    status, raw = await _call(session, req)
                    statuses[status] += 1
                    answer = client.interpret(status, raw)
                    answers[cart.key] = answer
                    if answer.outcome in FINAL:
                        return
                    await asyncio.sleep(0.02)

        await asyncio.gather(*(one(cart) for cart in carts))
    return answers


async def _call(session: aiohttp.ClientSession, req: PreparedRequest) -> tuple[int, bytes]:
    try:
        async with session.request(req.method, req.url, headers=req.headers, data=req.body) as resp:
            return resp.status, await resp.read()
    except (aiohttp.ClientError, TimeoutError):
        return 0, b""


async def _read_back(client: CheckoutClient, ids: list[str]) -> dict[str, str | None]:
    assert client.read_back is not None
    rb = client.read_back
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        states = {}
        for pid in ids:
            status, raw = await _call(session, rb.request(pid))
            states[pid] = rb.state(status, raw)
            assert rb.charged(status, raw) == (states[pid] == "PAID")
        return states


def _carts(start: int, count: int) -> list[Cart]:
    rng = random.Random(11 + start)
    shoppers = shopper_model(seed=11)
    return [
        shoppers.purchase(rng, METHODS[i % 4]).cart(f"chk-e2e-{i:04d}")
        for i in range(start, start + count)
    ]


def test_end_to_end_against_the_foreign_shop(tmp_path: Path) -> None:
    """~50 carts through the adapter; the shop's read-back and metrics agree with the client.

    Half the run loses every 4th answer *after* charging (the retry must get the
    same answer, charged once), half answers every 5th new order 503 before
    charging (the retry charges it once).
    """
    key = "e2e-api-key-31"
    with run_shop_api(
        args=("--api-key-env", "SHOP_API_KEY", "--limit-cents", str(LIMIT_CENTS)),
        env={"SHOP_API_KEY": key},
        state_dir=tmp_path,
    ) as shop:
        client = CheckoutClient(foreign_checkout(shop.url), environ={"SHOP_API_KEY": key})
        first, second = _carts(0, 25), _carts(25, 25)
        carts = first + second
        statuses: Counter[int] = Counter()
        shop.set_faults(unavailable_every=4, after_charge=True)
        answers = asyncio.run(asyncio.wait_for(_send(client, first, statuses), 60))
        shop.set_faults(unavailable_every=5, after_charge=False)
        answers |= asyncio.run(asyncio.wait_for(_send(client, second, statuses), 60))
        _check_run(shop, client, carts, answers, statuses)
        _check_refusals(shop, client, next(c for c in carts if c.amount_cents <= LIMIT_CENTS))
        pid = shop.pid
    assert not shop.pid_file.exists()  # the shop removed its pid file on SIGTERM
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped (and reaped) by its pid


def _check_run(
    shop: ShopApi,
    client: CheckoutClient,
    carts: list[Cart],
    answers: dict[str, Answer],
    statuses: Counter[int],
) -> None:
    expected = {c.key: "declined" if c.amount_cents > LIMIT_CENTS else "charged" for c in carts}
    assert 0 < Counter(expected.values())["declined"] < len(carts)  # both outcomes exercised
    assert {k: a.outcome for k, a in answers.items()} == expected
    assert statuses[503] == 25 // 4 + 25 // 5  # every retry got a final answer
    ids = [answers[c.key].payment_id for c in carts]
    assert None not in ids and len(set(ids)) == len(carts)
    states = asyncio.run(asyncio.wait_for(_read_back(client, [str(i) for i in ids]), 30))
    read = Counter(states.values())
    wanted = Counter(expected.values())
    assert read == Counter({"PAID": wanted["charged"], "REFUSED": wanted["declined"]})
    totals = shop.payments_total()
    by_status = Counter[str]()
    for (_method, status), value in totals.items():
        by_status[status] += int(value)
    assert by_status == {
        "success": read["PAID"],  # each order charged once, replays not counted
        "declined": read["REFUSED"],
        "error": statuses[503],
    }
    for method in METHODS:
        charged = sum(
            1 for c in carts if c.method == method and answers[c.key].outcome == "charged"
        )
        assert totals[(method, "success")] == charged


def _check_refusals(shop: ShopApi, client: CheckoutClient, cart: Cart) -> None:
    """A bad body is invalid (400), a reused key with another body too (409); neither charges."""
    before = shop.payments_total()

    async def go() -> list[Verdict]:
        good = client.request(cart)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            bad = good._replace(body=b'{"total":{"cents":-1}}')
            other = good._replace(body=good.body.replace(b'"quantity":', b'"quantity": ', 1))
            wrong_key = good._replace(headers={**good.headers, "X-Api-Key": "nope-nope"})
            unknown_ref = client.read_back.request("pay_missing") if client.read_back else good
            out: list[Verdict] = []
            for req in (bad, other, wrong_key, good):
                status, raw = await _call(session, req)
                out.append(client.classify(status, raw))
            status, raw = await _call(session, unknown_ref)
            assert status == 404 and client.read_back is not None
            assert client.read_back.state(status, raw) is None
            return out

    verdicts = asyncio.run(asyncio.wait_for(go(), 30))
    # other's body differs in whitespace only: the shop hashes bytes, so it is another body
    assert verdicts == ["invalid", "invalid", "unknown", "charged"]  # 401: no rule; replay
    assert shop.payments_total() == before
