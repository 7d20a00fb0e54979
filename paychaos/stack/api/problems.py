"""RFC 9457 problem details: every error the API answers has this shape.

Example body::

    {"type": "https://paychaos.dev/problems/invalid-request", "title": "Invalid request body",
     "status": 422, "detail": "items.0.quantity: Input should be greater than or equal to 1",
     "errors": [{"pointer": "#/items/0/quantity", "detail": "Input should be ..."}]}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from starlette.responses import Response

from paychaos.contracts.messages import json_position, validation_message

PROBLEM_BASE = "https://paychaos.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"

#: The OpenAPI schema of a problem body (RFC 9457), as every error answer has it.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["pointer", "field", "detail"],
                "properties": {
                    "pointer": {"type": "string"},
                    "field": {"type": "string"},
                    "detail": {"type": "string"},
                },
            },
        },
    },
}


def problem_response(description: str) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry for a problem answer."""
    return {
        "description": description,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_SCHEMA}},
    }


def problem(
    status: int,
    kind: str,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=dict(headers or {}),
    )


def validation_problem(
    errors: Iterable[Mapping[str, Any]], body: str | bytes | None = None
) -> Response:
    """422 naming each bad field as a JSON pointer (from pydantic's error list).

    Messages are plain words (no ``Value error,`` prefix, no documentation link);
    a body that is not JSON (FastAPI's ``json_invalid``, located by a character
    offset into ``body``) is named by line and column.
    """
    items = []
    for err in errors:
        if err.get("type") == "json_invalid":
            items.append(_json_syntax_item(err, body))
            continue
        loc = [str(part) for part in err.get("loc", ()) if part != "body"]
        pointer = "#/" + "/".join(loc) if loc else "#"
        if not loc and err.get("type") == "missing":
            message = "the request body is empty; send the checkout as a JSON object"
        else:
            message = validation_message(err)
        items.append({"pointer": pointer, "field": ".".join(loc) or "(body)", "detail": message})
    summary = "; ".join(f"{item['field']}: {item['detail']}" for item in items[:5])
    return problem(
        422,
        "invalid-request",
        "Invalid request body",
        summary or "the request body is not valid",
        errors=items,
    )


def _json_syntax_item(err: Mapping[str, Any], body: str | bytes | None) -> dict[str, Any]:
    loc = err.get("loc", ())
    offset = loc[-1] if loc and isinstance(loc[-1], int) else 0
    line, column = json_position(body or "", offset)
    reason = str((err.get("ctx") or {}).get("error") or "invalid JSON")
    return {
        "pointer": "#",
        "field": "(body)",
        "detail": f"not valid JSON: line {line}, column {column}: {reason}",
        "line": line,
        "column": column,
    }
