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
from collections.abc import Sequence
from dataclasses import dataclass, field

import yaml

from paychaos.contracts.errors import InvalidScenario

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


def _walk(node: yaml.Node, path: FieldPath, lines: LineMap, source: str) -> None:
    lines.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                where = format_path((*path, key))
                raise InvalidScenario(
                    f"{source}:{key_node.start_mark.line + 1}: {where}: duplicate key"
                )
            seen.add(key)
            lines.lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), lines, source)


def _one_line(exc: BaseException) -> str:
    return printable(" ".join(str(exc).split()))


def load_with_marks(text: str, source: str) -> tuple[JsonValue, LineMap]:
    """Parse one YAML document (safe subset); syntax errors become :class:`InvalidScenario`."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        raise InvalidScenario(f"{source}:1: (yaml): {_one_line(exc)}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise InvalidScenario(f"{source}:1: (top level): the file is empty")
        lines = LineMap()
        _walk(node, (), lines, source)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = printable(" ".join(str(exc.problem or exc.context or "invalid YAML").split()))
        raise InvalidScenario(f"{source}:{line}: (yaml): {problem}") from None
    except yaml.YAMLError as exc:
        raise InvalidScenario(f"{source}:1: (yaml): {_one_line(exc)}") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidScenario(f"{source}:1: (yaml): {_one_line(exc)}") from None
    finally:
        loader.dispose()
    return data, lines
