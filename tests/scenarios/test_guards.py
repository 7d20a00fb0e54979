"""Stop conditions: a guard that trips mid-run reverts every fault at once; the run says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paychaos.report.html import write_html
from paychaos.report.json_report import write_json
from paychaos.runner.runner import POLL_S, run_scenario
from paychaos.scenario.load import parse_scenario
from tests.live_stack import LiveStack
from tests.scenarios.scenario_stack_helpers import toxics

pytestmark = pytest.mark.integration

GUARDED = """\
name: guarded-outage
traffic: {rate_per_s: 20, duration_s: 60}
guards:
  - {type: error_ratio, name: checkout-errors, max_ratio: 0.3, min_requests: 10}
faults:
  - {id: cut-db, fault: db-outage, at_s: 3, duration_s: 50, params: {mode: reset}}
expectations:
  - {type: metric, query: "vector(0)", op: ">", value: 1, after: cut-db, within_s: 55}
"""


def test_a_tripped_guard_reverts_every_fault_within_one_poll(
    run_stack: LiveStack, tmp_path: Path
) -> None:
    record = run_scenario(parse_scenario(GUARDED, "guarded.yaml"), run_stack.session)
    assert record.status == "aborted", record.reason
    assert record.guard is not None
    assert record.guard["name"] == "checkout-errors"
    assert record.guard["reverted_within_s"] <= POLL_S
    # tripped after the fault went in, long before it would have ended
    injected = record.faults[0].injected_unix_s
    assert injected is not None
    assert injected <= record.guard["tripped_unix_s"] < injected + 20
    assert record.faults[0].reverted_unix_s is not None
    assert record.faults[0].reverted_unix_s - record.guard["tripped_unix_s"] <= POLL_S
    assert not [t for t in toxics(run_stack) if t["name"].startswith("chaos-")]
    assert "aborted by guard checkout-errors" in record.reason
    write_json([record], tmp_path / "report.json")
    write_html([record], tmp_path / "report.html")
    saved = json.loads((tmp_path / "report.json").read_text())["runs"][0]
    assert saved["guard"]["name"] == "checkout-errors"
    assert "aborted by guard checkout-errors" in (tmp_path / "report.html").read_text()


def test_a_guard_that_does_not_trip_lets_the_run_pass(run_stack: LiveStack) -> None:
    calm = """\
name: guarded-calm
traffic: {rate_per_s: 10, duration_s: 8}
guards:
  - {type: error_ratio, max_ratio: 0.3, min_requests: 10}
  - {type: alert, alert: ServiceDown}
expectations:
  - {type: metric, query: 'sum(shop_payments_total) > 0', op: ">", value: 0, within_s: 8}
"""
    record = run_scenario(parse_scenario(calm, "calm.yaml"), run_stack.session)
    assert record.status == "passed", record.reason
    assert record.guard is None
