"""EC2 instance profiles: vCPUs and memory, the instance boundary of a layout.

Built in (AWS's published figures for the T3 family): ``t3.small`` (2 vCPU,
2 GiB), ``t3.medium`` (2, 4 GiB), ``t3.large`` (2, 8 GiB), ``t3.xlarge``
(4, 16 GiB). Others come from ``--instance name=vcpu,mem_gib`` or a YAML file::

    instances:
      m7g.medium: {vcpu: 1, memory_gib: 4}

Example::

    profile = parse_instance_arg("tiny=1,0.5")      # InstanceProfile("tiny", 1, 512 MiB)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from paychaos.contracts.errors import InvalidInput

GIB = 2**30
T3_SPECS_URL = "https://aws.amazon.com/ec2/instance-types/t3/"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
MAX_VCPU = 448
MAX_MEMORY_GIB = 24_576.0


@dataclass(frozen=True)
class InstanceProfile:
    """An instance type: ``vcpu`` cores and ``memory_bytes`` of memory."""

    name: str
    vcpu: float
    memory_bytes: int
    source: str = ""

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GIB

    def describe(self) -> str:
        return f"{self.name} ({self.vcpu:g} vCPU, {self.memory_gib:g} GiB)"


def _profile(name: str, vcpu: float, memory_gib: float, source: str) -> InstanceProfile:
    return InstanceProfile(name, vcpu, int(memory_gib * GIB), source)


BUILTIN: dict[str, InstanceProfile] = {
    p.name: p
    for p in (
        _profile("t3.small", 2, 2, T3_SPECS_URL),
        _profile("t3.medium", 2, 4, T3_SPECS_URL),
        _profile("t3.large", 2, 8, T3_SPECS_URL),
        _profile("t3.xlarge", 4, 16, T3_SPECS_URL),
    )
}


def make_profile(name: str, vcpu: object, memory_gib: object, where: str) -> InstanceProfile:
    """Validate one profile; ``InvalidInput`` naming ``where`` on any problem."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"{where}: instance name {name!r} must be 1-40 of a-z 0-9 . _ - "
            "(starting with a letter or digit)"
        )
    values: dict[str, float] = {}
    for field, raw, limit in (("vcpu", vcpu, MAX_VCPU), ("memory_gib", memory_gib, MAX_MEMORY_GIB)):
        if isinstance(raw, bool):
            raise InvalidInput(f"{where}: {field} of {name} must be a number, got {raw!r}")
        try:
            value = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidInput(
                f"{where}: {field} of {name} must be a number, got {raw!r}"
            ) from None
        if not math.isfinite(value) or value <= 0 or value > limit:
            raise InvalidInput(f"{where}: {field} of {name} must be in (0, {limit:g}], got {raw!r}")
        values[field] = value
    return _profile(name, values["vcpu"], values["memory_gib"], where)


def parse_instance_arg(text: str) -> InstanceProfile:
    """``name=vcpu,mem_gib`` (``--instance``), e.g. ``m7g.medium=1,4``."""
    name, sep, rest = text.partition("=")
    parts = rest.split(",")
    if not sep or len(parts) != 2:
        raise InvalidInput(f"--instance {text!r}: expected name=vcpu,mem_gib (e.g. m7g.medium=1,4)")
    return make_profile(name.strip(), parts[0].strip(), parts[1].strip(), f"--instance {text!r}")


def load_profiles(path: Path) -> dict[str, InstanceProfile]:
    """Profiles from a YAML file with an ``instances:`` mapping."""
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(f"{path}{at}: not valid YAML ({exc})") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("instances"), Mapping):
        raise InvalidInput(
            f"{path}: expected a mapping 'instances: {{name: {{vcpu, memory_gib}}}}'"
        )
    profiles = {}
    for name, body in doc["instances"].items():
        where = f"{path}: instances.{name}"
        if not isinstance(body, Mapping):
            raise InvalidInput(f"{where}: expected {{vcpu: N, memory_gib: N}}")
        unknown = set(body) - {"vcpu", "memory_gib"}
        if unknown:
            raise InvalidInput(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        if "vcpu" not in body or "memory_gib" not in body:
            raise InvalidInput(f"{where}: both vcpu and memory_gib are required")
        profiles[str(name)] = make_profile(str(name), body["vcpu"], body["memory_gib"], where)
    return profiles


def resolve(name: str, extra: Mapping[str, InstanceProfile] = {}) -> InstanceProfile:
    """A profile by name: ``extra`` first, then the built-in ones."""
    found = extra.get(name) or BUILTIN.get(name)
    if found is None:
        known = ", ".join(sorted({*BUILTIN, *extra}))
        raise InvalidInput(f"unknown instance type {name!r}; known: {known}")
    return found
