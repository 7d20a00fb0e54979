"""YAML parsing that remembers where every value came from (file line per field path).

:func:`load_with_marks` returns the plain data and a :class:`LineMap` from field
paths (``("faults", 0, "params", "latency_ms")``) to 1-based line numbers, so
a validation error can name ``scenarios/x.yaml:14: faults[0].params.latency_ms``.

Example::

    data, lines = load_with_marks("a:\\n  b: 1\\n", "x.yaml")
    lines.line_of(("a", "b"))     # 2
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import yaml

from paychaos.contracts.errors import InvalidInput, InvalidScenario
from paychaos.contracts.messages import validation_message

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

PathElement = str | int
FieldPath = tuple[PathElement, ...]

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]


def format_path(path: Sequence[PathElement]) -> str:
    """``("faults", 0, "params", "x")`` → ``faults[0].params.x``."""
    out = ""
    for element in path:
        if isinstance(element, int):
            out += f"[{element}]"
        elif _NAME.match(element):
            out += ("." if out else "") + element
        else:
            out += f"[{printable(repr(element))}]"
    return out or "(top level)"


def printable(text: str) -> str:
    """``text`` on one line: control and separator characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass
class LineMap:
    """Line numbers (1-based) of the keys and items of one YAML document."""

    lines: dict[FieldPath, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[PathElement]) -> int:
        """Line of ``path``, or of its nearest recorded ancestor (1 if none)."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), 1)


def _walk(
    node: yaml.Node, path: FieldPath, lines: LineMap, source: str, error: type[InvalidInput]
) -> None:
    lines.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                where = format_path((*path, key))
                raise error(f"{source}:{key_node.start_mark.line + 1}: {where}: duplicate key")
            seen.add(key)
            lines.lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines, source, error)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), lines, source, error)


def _one_line(exc: BaseException) -> str:
    return printable(" ".join(str(exc).split()))


def load_with_marks(
    text: str, source: str, error: type[InvalidInput] = InvalidScenario
) -> tuple[JsonValue, LineMap]:
    """Parse one YAML document (safe subset); syntax errors become ``error`` (file:line)."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        raise error(f"{source}:1: (yaml): {_one_line(exc)}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise error(f"{source}:1: (top level): the file is empty")
        lines = LineMap()
        _walk(node, (), lines, source, error)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = printable(" ".join(str(exc.problem or exc.context or "invalid YAML").split()))
        raise error(f"{source}:{line}: (yaml): {problem}") from None
    except yaml.YAMLError as exc:
        raise error(f"{source}:1: (yaml): {_one_line(exc)}") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise error(f"{source}:1: (yaml): {_one_line(exc)}") from None
    finally:
        loader.dispose()
    return data, lines


_COMPARISONS = (
    ("greater than or equal to", ">="),
    ("greater than", ">"),
    ("less than or equal to", "<="),
    ("less than", "<"),
)


def message_of(error: Mapping[str, object]) -> str:
    text = validation_message(error, dialect="yaml")  # no links, prefixes, class names
    text = text.replace("Input should be", "must be")
    for words, sign in _COMPARISONS:
        text = text.replace(words, sign)
    if error.get("type") == "extra_forbidden":
        text = "unknown field"
    if error.get("type") == "missing":
        text = "required field is missing"
    return text[0].lower() + text[1:] if text else text


def data_path(data: JsonValue, loc: Sequence[object]) -> FieldPath:
    """Map a pydantic ``loc`` onto the data (dropping union tags like ``'alert'``)."""
    path: list[str | int] = []
    current: JsonValue = data
    for position, element in enumerate(loc):
        last = position == len(loc) - 1
        tag = isinstance(current, dict) and current.get("type") == element and not last
        if tag:
            continue  # the discriminator of a tagged union (expectations, probes)
        if isinstance(current, dict) and isinstance(element, str) and element in current:
            path.append(element)
            current = current[element]
            continue
        if isinstance(current, list) and isinstance(element, int) and 0 <= element < len(current):
            path.append(element)
            current = current[element]
            continue
        if last and isinstance(element, str | int) and isinstance(current, dict | list):
            path.append(element)  # a missing field, or an unknown mapping key
        # otherwise: a discriminator tag or a function validator name: skip
    return tuple(path)


def format_problems(source: str, lines: LineMap, problems: Iterable[tuple[FieldPath, str]]) -> str:
    ordered = sorted(problems, key=lambda p: (lines.line_of(p[0]), format_path(p[0])))
    return "\n".join(
        f"{source}:{lines.line_of(path)}: {format_path(path)}: {printable(msg)}"
        for path, msg in ordered
    )
