"""Scenario files: the typed schema and the validate-before-run loader."""

from __future__ import annotations

from paychaos.contracts.scenario import (
    AlertExpectation,
    Expectation,
    FaultStep,
    HygieneExpectation,
    LedgerExpectation,
    LogExpectation,
    MetricExpectation,
    MetricProbe,
    NoAlertsProbe,
    RumExpectation,
    Scenario,
    SteadyState,
    TraceExpectation,
    Traffic,
    compare,
)
from paychaos.scenario.load import (
    LoadedScenario,
    expand_paths,
    load_all,
    load_scenario,
    parse_scenario,
)
from paychaos.scenario.marks import format_path, load_with_marks

__all__ = [
    "AlertExpectation",
    "Expectation",
    "FaultStep",
    "HygieneExpectation",
    "LedgerExpectation",
    "LoadedScenario",
    "LogExpectation",
    "MetricExpectation",
    "MetricProbe",
    "NoAlertsProbe",
    "RumExpectation",
    "Scenario",
    "SteadyState",
    "TraceExpectation",
    "Traffic",
    "compare",
    "expand_paths",
    "format_path",
    "load_all",
    "load_scenario",
    "load_with_marks",
    "parse_scenario",
]
