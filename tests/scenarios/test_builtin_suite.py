"""The built-in suite as pytest tests: one test per ``scenarios/*.yaml`` (opt-in).

``make test`` (and so CI) runs the suite once, as ``paychaos run scenarios/``
(``make suite``), which prints the fault-by-signal matrix; this module is the
same suite for CI systems that collect pytest's JUnit, so it does not run it a
second time unless asked.

Each scenario runs on one shared fresh stack, with the suite's settle period
before it; a failed expectation fails the test with the run's reason. Opt in
with ``PAYCHAOS_SUITE=1`` (on one stack the whole suite takes ~18 minutes); the nightly runs::

    PAYCHAOS_SUITE=1 .venv/bin/pytest tests/scenarios/test_builtin_suite.py \\
        --junitxml=reports/pytest-junit.xml

``PAYCHAOS_SCENARIOS=db-latency,db-outage`` runs only those.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from paychaos.report.model import RunRecord
from paychaos.runner.runner import run_scenario
from paychaos.runner.suite import settle
from paychaos.scenario import load_scenario
from paychaos.stack.monitoring.promapi import PrometheusClient
from tests.live_stack import LiveStack, live_stack

REPO = Path(__file__).resolve().parents[2]
_only = {n for n in os.environ.get("PAYCHAOS_SCENARIOS", "").split(",") if n}
SCENARIOS = [p for p in sorted((REPO / "scenarios").glob("*.yaml")) if not _only or p.stem in _only]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        os.environ.get("PAYCHAOS_SUITE") != "1",
        reason="make test runs the suite as `paychaos run` beside pytest "
        "(scripts/test-and-suite.sh); PAYCHAOS_SUITE=1 runs it as pytest tests too",
    ),
]


@pytest.fixture(scope="module")
def suite_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    with live_stack(
        tmp_path_factory.mktemp("suite") / "state",
        scrape_interval_s=1.0,
        gateway_latency_scale=0.05,
        gateway_timeout_s=1.0,
    ) as live:
        yield live


def _explain(record: RunRecord) -> str:
    lines = [f"{record.scenario}: {record.status}: {record.reason}"]
    lines += [f"  {e.status:<8} {e.name}: {e.detail}" for e in record.expectations]
    return "\n".join(lines)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_builtin_scenario(path: Path, suite_stack: LiveStack) -> None:
    loaded = load_scenario(path)
    from paychaos.contracts.scenario import NoAlertsProbe

    probes = [p for p in loaded.scenario.steady_state.probes if isinstance(p, NoAlertsProbe)]
    settle(PrometheusClient(suite_stack.urls["prometheus"]), loaded.scenario.settle_s, probes)
    record = run_scenario(loaded, suite_stack.session)
    assert record.status == "passed", _explain(record)
    assert record.times_below_floor() == []
