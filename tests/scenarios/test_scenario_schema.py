"""Scenario files: typed schema, file:line:field errors, nothing touched on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paychaos.cli import main
from paychaos.contracts.errors import InvalidScenario
from paychaos.contracts.scenario import AlertExpectation
from paychaos.scenario import load_all, parse_scenario

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))

GOOD = """\
name: tiny
traffic:
  rate_per_s: 5
  duration_s: 30
faults:
  - id: slow
    fault: db-latency
    at_s: 5
    duration_s: 10
    params:
      latency_ms: 300
expectations:
  - type: alert
    alert: DatabaseLatencyHigh
    after: slow
    within_s: 30
  - type: ledger
"""


def _error(text: str) -> str:
    with pytest.raises(InvalidScenario) as info:
        parse_scenario(text, "x.yaml")
    return str(info.value)


def test_builtin_scenarios_are_valid() -> None:
    loaded = load_all([REPO / "scenarios"])
    assert {item.scenario.name for item in loaded} >= {
        "db-latency",
        "db-outage",
        "gateway-timeout-paypal",
        "decline-spike",
        "payment-api-crash",
        "prometheus-crash",
    }
    for item in loaded:
        assert len(item.params) == len(item.scenario.faults)


def test_a_good_scenario_parses_into_frozen_typed_models() -> None:
    loaded = parse_scenario(GOOD, "x.yaml")
    exp = loaded.scenario.expectations[0]
    assert isinstance(exp, AlertExpectation) and exp.within_s == 30
    assert loaded.params[0].param_dict()["latency_ms"] == 300
    with pytest.raises(ValueError):
        loaded.scenario.traffic.duration_s = 3


def test_a_bad_fault_parameter_names_file_line_and_field() -> None:
    message = _error(GOOD.replace("latency_ms: 300", "latency_ms: 0"))
    assert message.startswith("x.yaml:11: faults[0].params.latency_ms: must be at least 1")


def test_an_unknown_parameter_and_an_unknown_fault_are_named() -> None:
    assert "x.yaml:11: faults[0].params.latency: unknown parameter" in _error(
        GOOD.replace("latency_ms: 300", "latency: 300")
    )
    assert "x.yaml:7: faults[0].fault: unknown fault 'db-latenc'" in _error(
        GOOD.replace("fault: db-latency", "fault: db-latenc")
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  rate_per_s: 5", "  rate_per_s: -5", "x.yaml:3: traffic.rate_per_s: must be > 0"),
        (
            "    within_s: 30",
            "    within_s: 30\n    bogus: 1",
            "x.yaml:17: expectations[0].bogus: unknown field",
        ),
        (
            "    after: slow",
            "    after: fast",
            "x.yaml:15: expectations[0].after: no fault step 'fast'",
        ),
        (
            "  - type: ledger",
            "  - type: ledgers",
            "x.yaml:17: expectations[1].type: input tag 'ledgers'",
        ),
        (
            "    duration_s: 10",
            "    duration_s: 100",
            "x.yaml:9: faults[0].duration_s: the fault ends at 105 s",
        ),
        ("name: tiny", "name: tiny\nname: again", "x.yaml:2: name: duplicate key"),
        ("  duration_s: 30", "  duration_s: [30", "x.yaml:"),
        ("name: tiny\n", "", "x.yaml:1: name: required field is missing"),
        # YAML words, not pydantic's ("a valid dictionary or instance of Traffic", "tuple")
        (
            "traffic:\n  rate_per_s: 5\n  duration_s: 30",
            "traffic: 5",
            "x.yaml:2: traffic: must be a mapping",
        ),
        ("expectations:\n", "expectations: 3\nunused:\n", "expectations: must be a list"),
        (
            "  - type: ledger",
            "  - {type: trace, error: timeout, status: ok}\n  - type: ledger",
            "selects failed spans, not status: ok",
        ),
        (
            "  - type: ledger",
            "  - {type: trace, error: reset}\n  - type: ledger",
            "x.yaml:17: expectations[1].error",
        ),
    ],
)
def test_every_problem_names_its_line_and_field(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    message = _error(GOOD.replace(old, new, 1))
    assert expected in message
    for internal in ("https://", "Value error", "dictionary", "instance of", "tuple"):
        assert internal not in message


def test_validate_cli_exits_2_naming_the_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text(GOOD.replace("latency_ms: 300", "latency_ms: -1"))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:11: faults[0].params.latency_ms:" in err
    assert "Traceback" not in err


def test_run_with_a_bad_scenario_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import paychaos.targets.resolve as resolve

    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a target was resolved for an invalid scenario")

    monkeypatch.setattr(resolve, "plan_target", forbidden)
    good, bad = tmp_path / "a.yaml", tmp_path / "b.yaml"
    good.write_text(GOOD)
    bad.write_text(GOOD.replace("op: x", "").replace("within_s: 30", "within_s: -3"))
    code = main(["--state-dir", str(tmp_path / "state"), "run", str(good), str(bad)])
    assert code == 2
    assert f"{bad}:16: expectations[0].within_s: must be > 0" in capsys.readouterr().err


# ------------------------------------------------------------------ fuzzing

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_base = yaml.safe_load(GOOD)


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    """The good scenario with one field replaced, removed or added at some depth."""
    data = yaml.safe_load(GOOD)
    node = data
    path = draw(
        st.lists(st.sampled_from(["traffic", "faults", 0, "params", "expectations", 1]), max_size=3)
    )
    for key in path:
        if isinstance(node, dict) and isinstance(key, str):
            node = node.get(key, node)
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
    if isinstance(node, dict) and node:
        key = draw(st.sampled_from(sorted(node)))
        if draw(st.booleans()):
            node[key] = draw(_values)
        else:
            del node[key]
    elif isinstance(node, list):
        node.append(draw(_values))
    return yaml.safe_dump(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(_mutated(), st.text(max_size=200)))
def test_fuzzed_scenarios_are_valid_or_rejected_with_a_place(text: str) -> None:
    try:
        parse_scenario(text, "fuzz.yaml")
    except InvalidScenario as exc:
        for line in str(exc).splitlines():
            assert line.startswith("fuzz.yaml:"), line
            where = line.split(":", 2)
            assert where[1].isdigit(), line


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_mutated())
def test_fuzzed_files_through_the_cli_exit_0_or_2(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_text(text, encoding="utf-8")
        assert main(["validate", str(path)]) in (0, 2)
