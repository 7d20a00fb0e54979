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

PROBLEM_BASE = "https://paychaos.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


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


def validation_problem(errors: Iterable[Mapping[str, Any]]) -> Response:
    """422 naming each bad field as a JSON pointer (from pydantic's error list)."""
    items = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ()) if part != "body"]
        pointer = "#/" + "/".join(loc) if loc else "#"
        message = str(err.get("msg", "invalid"))
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        items.append({"pointer": pointer, "field": ".".join(loc) or "(body)", "detail": message})
    summary = "; ".join(f"{item['field']}: {item['detail']}" for item in items[:5])
    return problem(
        422,
        "invalid-request",
        "Invalid request body",
        summary or "the request body is not valid",
        errors=items,
    )
