"""Fault parameters: declared once, validated up front, frozen afterwards.

A fault's parameters are a frozen dataclass whose fields carry a
:func:`param` spec (unit in the name, default, range, help). :func:`parse_params`
is the pure validation pass: it turns raw values (CLI strings, JSON, form
fields) into that dataclass or raises :class:`~paychaos.contracts.errors.InvalidFault`
naming the parameter, before anything is touched.

Example::

    @dataclass(frozen=True)
    class DbLatencyParams:
        latency_ms: int = param(300, min=1, max=60_000, help="added delay")

    parse_params("db-latency", DbLatencyParams, {"latency_ms": "250"}).latency_ms  # 250
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from paychaos.contracts.errors import InvalidFault

P = TypeVar("P")

_SPEC_KEY = "paychaos.param"


@dataclass(frozen=True)
class ParamSpec:
    """One parameter as ``paychaos chaos list`` shows it."""

    name: str
    kind: str  # "int" | "float" | "str"
    default: object
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.min is not None and self.max is not None:
            return f"{_num(self.min)}..{_num(self.max)}"
        if self.min is not None:
            return f">= {_num(self.min)}"
        return "any"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def param(
    default: Any,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] = (),
    help: str = "",
) -> Any:
    """A dataclass field with its validation spec (kind comes from the annotation)."""
    spec = {"min": min, "max": max, "choices": choices, "help": help}
    return dataclasses.field(default=default, metadata={_SPEC_KEY: spec})


def param_specs(params_cls: type[Any]) -> tuple[ParamSpec, ...]:
    """The specs of a parameters dataclass, in declaration order."""
    specs = []
    for item in dataclasses.fields(params_cls):
        meta = item.metadata.get(_SPEC_KEY, {})
        kind = item.type if isinstance(item.type, str) else getattr(item.type, "__name__", "str")
        specs.append(
            ParamSpec(
                name=item.name,
                kind=str(kind),
                default=item.default,
                min=meta.get("min"),
                max=meta.get("max"),
                choices=tuple(meta.get("choices", ())),
                help=meta.get("help", ""),
            )
        )
    return tuple(specs)


def coerce(fault: str, spec: ParamSpec, raw: object) -> object:
    """One raw value to the parameter's type, checked against its range."""
    where = f"{fault}: parameter {spec.name} ({spec.flag})"
    value: object
    if spec.kind == "int":
        if isinstance(raw, bool):
            raise InvalidFault(f"{where} must be a whole number, got {raw!r}")
        try:
            value = int(raw) if isinstance(raw, int) else int(str(raw).strip())
        except ValueError:
            raise InvalidFault(f"{where} must be a whole number, got {raw!r}") from None
    elif spec.kind == "float":
        if isinstance(raw, bool):
            raise InvalidFault(f"{where} must be a number, got {raw!r}")
        try:
            value = float(raw) if isinstance(raw, int | float) else float(str(raw).strip())
        except ValueError:
            raise InvalidFault(f"{where} must be a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise InvalidFault(f"{where} must be a finite number, got {raw!r}")
    else:
        value = str(raw)
        if spec.choices and value not in spec.choices:
            raise InvalidFault(f"{where} must be one of {', '.join(spec.choices)}, got {value!r}")
        return value
    assert isinstance(value, int | float)
    if spec.min is not None and value < spec.min:
        raise InvalidFault(f"{where} must be at least {_num(spec.min)}, got {raw!r}")
    if spec.max is not None and value > spec.max:
        raise InvalidFault(f"{where} must be at most {_num(spec.max)}, got {raw!r}")
    return value


def parse_params(fault: str, params_cls: type[P], raw: Mapping[str, object]) -> P:
    """Validate ``raw`` (names with ``_`` or ``-``) into ``params_cls``; pure, touches nothing."""
    specs = {spec.name: spec for spec in param_specs(params_cls)}
    values: dict[str, object] = {}
    for key, value in raw.items():
        name = key.lstrip("-").replace("-", "_")
        spec = specs.get(name)
        if spec is None:
            known = ", ".join(s.flag for s in specs.values()) or "none"
            raise InvalidFault(f"{fault}: unknown parameter {key!r} (its parameters: {known})")
        values[name] = coerce(fault, spec, value)
    return params_cls(**values)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration_s(text: str, *, what: str = "duration") -> float:
    """``"60s"``, ``"2m"``, ``"500ms"``, ``"1m30s"`` → seconds; raises InvalidFault."""
    cleaned = str(text).strip().lower()
    pos, total = 0, 0.0
    while pos < len(cleaned):
        match = _DURATION_PART.match(cleaned, pos)
        if match is None:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if not cleaned or pos != len(cleaned):
        raise InvalidFault(
            f"{what}: {text!r} is not a duration; use a number with a unit: "
            "500ms, 60s, 2m, 1h (or 1m30s)"
        )
    return total


def format_duration_s(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.1f}m"
