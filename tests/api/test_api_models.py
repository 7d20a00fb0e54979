"""The checkout body is validated at the edge: every rule names its field."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from paychaos.stack.api.models import CheckoutRequest
from paychaos.stack.api.problems import validation_problem
from paychaos.stack.telemetry import contains_pan, luhn_valid, redact_pan

VALID: dict[str, object] = {
    "customer": {"id": "cus_1", "email": "ana@example.com"},
    "items": [
        {"sku": "MUG", "quantity": 2, "unit_price": "9.50"},
        {"sku": "TEA", "quantity": 1, "unit_price": "4.25"},
    ],
    "amount": "23.25",
    "currency": "USD",
    "method": "visa",
    "payment": {"card_token": "tok_abc", "last4": "4242"},
}


def _body(**changes: object) -> dict[str, Any]:
    body = copy.deepcopy(VALID)
    body.update(changes)
    return body


def _error_fields(body: dict) -> list[str]:
    with pytest.raises(ValidationError) as info:
        CheckoutRequest.model_validate(body)
    return [".".join(str(p) for p in err["loc"]) for err in info.value.errors()]


def test_a_valid_body_parses_with_exact_cents() -> None:
    req = CheckoutRequest.model_validate(VALID)
    assert req.amount_cents == 2325
    assert req.gateway_source() == {"card_token": "tok_abc", "last4": "4242"}


@pytest.mark.parametrize(
    ("method", "payment", "source_key"),
    [
        ("paypal", {"payer_email": "p@example.com"}, "payer_email"),
        ("crypto", {"wallet": "0x" + "ab" * 20}, "wallet"),
        ("amex", {"card_token": "tok_x", "last4": "0005"}, "card_token"),
    ],
)
def test_each_method_has_its_own_details(method: str, payment: dict, source_key: str) -> None:
    req = CheckoutRequest.model_validate(_body(method=method, payment=payment))
    assert source_key in req.gateway_source()


@pytest.mark.parametrize(
    ("method", "payment", "words"),
    [
        ("visa", {"payer_email": "p@example.com"}, "card_token"),
        ("paypal", {"card_token": "tok_x", "last4": "1234"}, "payer_email"),
        ("crypto", {}, "wallet"),
    ],
)
def test_details_that_do_not_fit_the_method_are_refused(
    method: str, payment: dict, words: str
) -> None:
    with pytest.raises(ValidationError, match=words):
        CheckoutRequest.model_validate(_body(method=method, payment=payment))


def test_amount_must_equal_the_items_total() -> None:
    with pytest.raises(ValidationError, match=r"does not equal the items' total 23\.25"):
        CheckoutRequest.model_validate(_body(amount="23.20"))


def test_field_errors_name_the_field() -> None:
    body = _body()
    body["items"][1]["quantity"] = 0
    assert _error_fields(body) == ["items.1.quantity"]
    assert _error_fields(_body(currency="XXX")) == ["currency"]
    assert _error_fields(_body(method="cheque")) == ["method"]
    assert _error_fields(_body(extra="x")) == ["extra"]


def test_a_card_number_as_token_is_refused() -> None:
    body = _body(payment={"card_token": "4111 1111 1111 1111", "last4": "1111"})
    assert _error_fields(body) == ["payment.card_token"]
    # a token with many digits that is not a card number is fine
    CheckoutRequest.model_validate(
        _body(payment={"card_token": "tok_123456789012", "last4": "1" * 4})
    )


def test_validation_problem_is_rfc9457_with_pointers() -> None:
    body = _body()
    body["items"][0]["unit_price"] = "-1"
    with pytest.raises(ValidationError) as info:
        CheckoutRequest.model_validate(body)
    response = validation_problem(info.value.errors())
    assert response.status_code == 422
    assert response.media_type == "application/problem+json"
    assert b'"pointer":"#/items/0/unit_price"' in response.body


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("4111111111111111", "[PAN REDACTED ...1111]"),
        ("card 4111-1111-1111-1111 ok", "card [PAN REDACTED ...1111] ok"),
        ("amex 378282246310005", "amex [PAN REDACTED ...0005]"),
        ("order 4111111111111112", "order 4111111111111112"),  # fails Luhn: not a PAN
        ("short 4242", "short 4242"),
    ],
)
def test_redact_pan(text: str, masked: str) -> None:
    assert redact_pan(text) == masked
    assert contains_pan(text) == (text != masked)


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def test_validation_problem_has_no_library_internals() -> None:
    body = _body(customer="ana", items="MUG")  # a string where an object, a list goes
    with pytest.raises(ValidationError) as info:
        CheckoutRequest.model_validate(body)
    errors = info.value.errors()
    assert any("https://errors.pydantic.dev" in str(err.get("url", "")) for err in errors)
    text = bytes(validation_problem(errors).body).decode()
    for internal in ("https://errors.pydantic", "Value error", "dictionary", "instance of"):
        assert internal not in text, text
    assert '"field":"customer","detail":"must be a JSON object"' in text
    assert '"field":"items","detail":"must be a JSON array"' in text


def test_a_value_error_reads_as_its_own_words() -> None:
    with pytest.raises(ValidationError) as info:
        CheckoutRequest.model_validate(_body(amount="20.00"))
    assert "Value error, " in str(info.value)  # what pydantic says ...
    text = bytes(validation_problem(info.value.errors()).body).decode()
    assert "Value error" not in text and "amount 20.00 does not equal" in text  # ... and we


def test_a_json_syntax_error_is_named_by_line_and_column() -> None:
    document = '{\n  "customer": {"id": "c1"},\n  "items": [,]\n}'
    offset = document.index(",]")
    # what FastAPI hands the handler for a body json.loads refuses
    errors = [
        {
            "type": "json_invalid",
            "loc": ("body", offset),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": "Expecting value"},
        }
    ]
    problem = orjson.loads(validation_problem(errors, document).body)
    assert problem["status"] == 422
    [error] = problem["errors"]
    assert (error["line"], error["column"]) == (3, 13)
    assert error["pointer"] == "#"  # not "#/<offset>"
    assert problem["detail"] == "(body): not valid JSON: line 3, column 13: Expecting value"


def test_an_empty_body_says_so() -> None:
    errors = [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
    problem = orjson.loads(validation_problem(errors, b"").body)
    assert "the request body is empty" in problem["detail"]
