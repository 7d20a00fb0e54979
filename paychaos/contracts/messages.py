"""Error messages a user reads: one sentence each, never a library's internals.

Validation errors (pydantic's error lists) and JSON decode errors are turned
into plain words here, wherever they surface (API problem details, the
gateway, the collector, the CLI): no documentation links, no ``Value error,``
prefixes, no class names, and a JSON syntax error names its line and column
rather than a character offset.

Example::

    >>> import json
    >>> try:
    ...     json.loads('{"a": 1,\\n "b": }')
    ... except json.JSONDecodeError as exc:
    ...     print(json_error(exc))
    line 2, column 7: Expecting value
    >>> field_errors([{"loc": ("items", 0, "quantity"), "msg": "Value error, must be >= 1"}])
    [('items.0.quantity', 'must be >= 1')]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_PREFIXES = ("Value error, ", "Assertion failed, ")
_OBJECT_WANTED = re.compile(
    r"^Input should be a valid dictionary( or (instance of \w+|object to extract fields from))?$"
)
_LINK = re.compile(r"\s*\(?(For further information visit )?https?://\S+\)?")
_EMPTY_JSON = "it is empty"


def json_error(exc: json.JSONDecodeError) -> str:
    """``line L, column C: what is wrong`` for a JSON syntax error (``json`` or ``orjson``)."""
    message = exc.msg
    if message.startswith("Input is a zero-length") or (not exc.doc.strip() and exc.pos == 0):
        return _EMPTY_JSON
    if "not valid UTF-8" in message:
        message = "not valid UTF-8"
    return f"line {exc.lineno}, column {exc.colno}: {message}"


def json_position(document: str | bytes, offset: int) -> tuple[int, int]:
    """1-based ``(line, column)`` of character ``offset`` in ``document``."""
    text = document.decode("utf-8", "replace") if isinstance(document, bytes) else document
    before = text[: max(0, offset)]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1


_WORDS = {
    "json": {"object": "a JSON object", "list": "a JSON array"},
    "yaml": {"object": "a mapping", "list": "a list"},
}
_OBJECT_KINDS = ("model_type", "dict_type", "model_attributes_type")
_LIST_KINDS = ("tuple_type", "list_type", "set_type", "frozen_set_type")


def validation_message(error: Mapping[str, Any], *, dialect: str = "json") -> str:
    """One pydantic error's message, in plain words (``dialect``: the input was ``json``
    or ``yaml``, which decides between "a JSON object" and "a mapping")."""
    kind = str(error.get("type", ""))
    words = _WORDS[dialect]
    message = _LINK.sub("", str(error.get("msg", "is not valid"))).strip()
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    if _OBJECT_WANTED.match(message) or kind in _OBJECT_KINDS:
        return f"must be {words['object']}"
    if kind in _LIST_KINDS:
        return f"must be {words['list']}"
    return message or "is not valid"


def field_path(loc: Sequence[Any], *, drop: Iterable[str] = ()) -> str:
    """``items.0.quantity`` for a pydantic ``loc`` (parts in ``drop``, e.g. ``body``, skipped)."""
    dropped = set(drop)
    return ".".join(str(part) for part in loc if str(part) not in dropped)


def field_errors(
    errors: Iterable[Mapping[str, Any]], *, drop: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """``(field path, message)`` for each pydantic error (path ``""`` for the whole input)."""
    dropped = tuple(drop)
    return [
        (field_path(err.get("loc", ()), drop=dropped), validation_message(err)) for err in errors
    ]


def summary(pairs: Sequence[tuple[str, str]], *, limit: int = 3, whole: str = "body") -> str:
    """``a.b: Field required; c: must be a JSON object`` (at most ``limit``, then ``(+N more)``)."""
    parts = [f"{path or whole}: {message}" for path, message in pairs[:limit]]
    if len(pairs) > limit:
        parts.append(f"(+{len(pairs) - limit} more)")
    return "; ".join(parts)
