"""The payment API's OpenAPI document, fuzzed from the document itself (Schemathesis).

Every documented operation of the running API (real PostgreSQL and gateway
behind it, on loopback) gets requests generated from its schema, valid and
invalid, and every answer must:

- never be a 500 (an unhandled error); a 502/503/504 is what the document
  declares for a dependency that failed or was slow (on a loaded machine the
  gateway can miss the API's 1 s timeout) and must then be that documented
  problem;
- carry a status code the document lists, with the declared content type and a
  body matching the declared schema (RFC 9457 problems included);
- accept a schema-valid request, or refuse it with a documented problem
  (``positive_data_acceptance`` knows the refusals the document declares);
- refuse a request that breaks the schema (``negative_data_rejection``).

Bounded: ``MAX_EXAMPLES`` requests per operation and generation mode.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from paychaos.stack.embedded import EmbeddedStack

pytestmark = pytest.mark.integration
MAX_EXAMPLES = 40
DOCUMENTED = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def accepted_or_refused_by_a_documented_rule(_ctx: Any, response: Any, case: Any) -> None:
    """A schema-valid request: charged (201), declined (402), or refused by a rule across
    fields that the 422's description documents (its errors point at ``#``, the body);
    a refusal naming one field means the document does not say what the API checks."""
    if response.status_code in (201, 402, 502, 503, 504):
        return  # charged, declined, or a dependency's documented failure
    body = response.json() if response.status_code == 422 else {}
    fields = [e["field"] for e in body.get("errors", []) if e.get("pointer") != "#"]
    assert response.status_code == 422 and not fields, (
        f"a schema-valid {case.method} {case.path} was refused with {response.status_code}"
        + (
            f", naming {', '.join(fields)}: the document does not say what the API checks there"
            if fields
            else f": {response.text[:300]}"
        )
    )


def _operations(stack: EmbeddedStack) -> list[Any]:
    schema = schemathesis.openapi.from_url(stack.urls["api"] + "/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert hasattr(result, "ok"), f"the document has an invalid operation: {result.err()}"
        operations.append(result.ok())
    return operations


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_every_answer_is_documented_and_no_request_breaks_the_api(
    stack: EmbeddedStack, mode: str
) -> None:
    operations = _operations(stack)
    assert {op.label for op in operations} >= {
        "POST /api/checkout",
        "GET /api/payments/{payment_id}",
    }
    for operation in operations:
        checkout = operation.label == "POST /api/checkout"
        if mode == "negative" and not list(operation.iter_parameters()) and not checkout:
            continue  # no input to break (/healthz, /readyz)

        @given(case=operation.as_strategy(GenerationMode(mode)))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            response = case.call(timeout=10)
            assert response.status_code != 500, f"500 from {case.method} {case.path}"
            case.validate_response(response, checks=DOCUMENTED)
            if not checkout:  # noqa: B023 (fuzz runs inside this iteration)
                return
            if mode == "positive":
                accepted_or_refused_by_a_documented_rule(None, response, case)
            else:
                assert 400 <= response.status_code < 500, (
                    f"a request breaking the schema was answered {response.status_code}"
                )

        fuzz()
