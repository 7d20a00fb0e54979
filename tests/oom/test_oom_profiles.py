"""Instance profiles and layouts: built-ins, --instance, YAML, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from paychaos.contracts.errors import InvalidInput
from paychaos.oom.layouts import DEFAULT_LAYOUTS, parse_layout
from paychaos.oom.profiles import BUILTIN, GIB, load_profiles, parse_instance_arg, resolve


def test_builtin_t3_figures() -> None:
    got = {name: (p.vcpu, p.memory_bytes // GIB) for name, p in BUILTIN.items()}
    assert got == {
        "t3.small": (2, 2),
        "t3.medium": (2, 4),
        "t3.large": (2, 8),
        "t3.xlarge": (4, 16),
    }


def test_instance_arg_and_errors() -> None:
    p = parse_instance_arg("tiny=1,0.5")
    assert (p.name, p.vcpu, p.memory_bytes) == ("tiny", 1.0, GIB // 2)
    for bad, message in (
        ("tiny", "expected name=vcpu,mem_gib"),
        ("tiny=1", "expected name=vcpu,mem_gib"),
        ("tiny=x,1", "vcpu of tiny must be a number"),
        ("tiny=1,-2", "memory_gib of tiny must be in"),
        ("tiny=0,1", "vcpu of tiny must be in"),
        ("Bad Name=1,1", "instance name"),
        ("tiny=1,nan", "memory_gib of tiny must be in"),
    ):
        with pytest.raises(InvalidInput, match=message):
            parse_instance_arg(bad)


def test_yaml_profiles_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("instances:\n  m7g.medium: {vcpu: 1, memory_gib: 4}\n")
    profiles = load_profiles(good)
    assert profiles["m7g.medium"].memory_bytes == 4 * GIB
    assert resolve("m7g.medium", profiles) is profiles["m7g.medium"]
    for text, message in (
        ("instances: [1, 2]", "expected a mapping"),
        ("instances:\n  x: {vcpu: 1}\n", "both vcpu and memory_gib are required"),
        ("instances:\n  x: {vcpu: 1, memory_gib: 2, ram: 3}\n", "unknown field"),
        ("instances:\n  x: {vcpu: true, memory_gib: 2}\n", "must be a number"),
        ("instances: {x: [\n", "not valid YAML"),
    ):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(InvalidInput, match=message):
            load_profiles(bad)
    with pytest.raises(InvalidInput, match="cannot read"):
        load_profiles(tmp_path / "missing.yaml")


def test_layouts() -> None:
    a, large, c = (parse_layout(text) for text in DEFAULT_LAYOUTS)
    assert a.key == "A@t3.medium" and large.instance.name == "t3.large"
    assert set(a.real_on_instance) == {"api", "collector", "prometheus", "alertmanager"}
    assert set(a.modelled) == {"os-docker", "grafana", "alloy", "loki", "tempo"}
    assert c.real_on_instance == ("api",) and c.modelled == ("os-docker", "alloy")
    assert "postgres" in parse_layout("A@t3.medium", db_on_instance=True).real_on_instance
    with pytest.raises(InvalidInput, match="expected OPTION@INSTANCE"):
        parse_layout("A")
    with pytest.raises(InvalidInput, match="option must be one of"):
        parse_layout("B@t3.medium")
    with pytest.raises(InvalidInput, match=r"unknown instance type 't9\.huge'"):
        parse_layout("A@t9.huge")
