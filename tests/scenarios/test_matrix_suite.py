"""A tiny suite on a real stack, through ``paychaos run``: one failure mode no alert watches.

Visa declines (a business outcome, not an error) are seen by a metric only; a
database outage fires ``DatabaseErrors``. The matrix the run prints, and the
one in its JSON and HTML reports, must flag the declines row as a blind spot
and not the outage row, with the outage's alert fired and notified apart.
The stack is shared with the package's other tests: the test first waits until
no alert of theirs is pending or firing (the suite's own settle waits only for
firing ones), and each scenario's steady state holds that before its fault.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from paychaos.cli import main
from paychaos.stack.monitoring.promapi import PrometheusClient
from tests.live_stack import LiveStack

pytestmark = pytest.mark.integration
HOST_WIDE = ("InstanceOOMKill", "InstanceMemoryPressure")  # the host's counters, shared
QUIET_WITHIN_S = 240.0

DECLINES = """\
name: tiny-declines
failure_mode: visa declines (no alert watches them)
traffic: {rate_per_s: 8, duration_s: 22}
steady_state:
  probes: [{type: no_alerts, when: before, ignore: [InstanceOOMKill, InstanceMemoryPressure]}]
faults:
  - {id: declines, fault: decline-spike, at_s: 4, duration_s: 14,
     params: {method: visa, decline_rate: 0.9}}
expectations:
  - {name: visa decline ratio up, type: metric, within_s: 14, op: ">", value: 0.3,
     query: 'sum(rate(shop_payments_total{method="visa",status="declined"}[10s])) / sum(rate(shop_payments_total{method="visa"}[10s]))'}
  - {name: no payment-error alert, type: alert, alert: PaymentErrorRatioHigh, absent: true}
"""

OUTAGE = """\
name: tiny-db-outage
failure_mode: database down
traffic: {rate_per_s: 8, duration_s: 40}
steady_state:
  probes: [{type: no_alerts, when: before, ignore: [InstanceOOMKill, InstanceMemoryPressure]}]
faults:
  - {id: db-down, fault: db-outage, at_s: 4, duration_s: 20, params: {mode: reset}}
expectations:
  - {name: DatabaseErrors fires and is notified, type: alert, alert: DatabaseErrors,
     labels: {component: database}, within_s: 34}
  - {name: DB errors counted, type: metric, query: 'sum(increase(shop_db_errors_total[15s]))',
     op: ">", value: 0, within_s: 10}
"""


def _wait_until_quiet(prometheus: PrometheusClient) -> None:
    """No alert pending or firing (a 1m rule window clears in ~75 s); fails, never skips."""
    deadline = time.monotonic() + QUIET_WITHIN_S
    while True:
        active = [a.name for a in prometheus.alerts() if a.name not in HOST_WIDE]
        if not active:
            return
        assert time.monotonic() < deadline, f"alerts still active: {active}"
        time.sleep(1.0)


def test_a_tiny_suite_flags_the_failure_mode_without_an_alert_as_a_blind_spot(
    run_stack: LiveStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "a-declines.yaml").write_text(DECLINES)
    (suite / "b-db-outage.yaml").write_text(OUTAGE)
    reports = tmp_path / "reports"
    _wait_until_quiet(PrometheusClient(run_stack.urls["prometheus"]))
    state_dir = str(run_stack.stack.cfg.state_dir)
    args = ["--state-dir", state_dir, "run", str(suite), "--reuse", "--no-progress"]
    code = main([*args, "--reports-dir", str(reports)])
    out = capsys.readouterr().out
    assert code == 0, out

    # the terminal: the matrix, its coverage line, the blind spot, the wall time
    lines = out.splitlines()
    [summary] = [line for line in lines if line.startswith("fault-by-signal matrix: ")]
    assert "1 of 2 failure modes alerted" in summary and "blind spots: visa declines" in summary
    [declines] = [line for line in lines if line.startswith("visa declines")]
    [outage] = [line for line in lines if line.startswith("database down")]
    assert "BLIND SPOT" in declines and "quiet ✓" in declines
    assert "BLIND SPOT" not in outage
    assert any(line.startswith("suite wall time: ") for line in lines)

    [report_dir] = [p for p in reports.iterdir() if p.is_dir()]
    doc = json.loads((report_dir / "report.json").read_text())
    matrix = doc["matrix"]
    # no time below its floor (recoveries of 0.0 s on samples from before the revert)
    assert [r["times_below_floor"] for r in doc["runs"]] == [[], []]
    assert matrix["blind_spots"] == ["tiny-declines"]
    rows = {row["scenario"]: row for row in matrix["rows"]}
    cells = rows["tiny-db-outage"]["cells"]
    fired, notified = cells["alert"], cells["notified"]
    assert fired["state"] == notified["state"] == "detected"
    assert 0 <= fired["detected_s"] <= notified["detected_s"]
    assert fired["floor_s"] < notified["floor_s"]  # group_wait only in the notification's floor
    assert rows["tiny-declines"]["cells"]["metric"]["state"] == "detected"
    assert rows["tiny-declines"]["cells"]["alert"]["state"] == "not_checked"

    page = (report_dir / "report.html").read_text()
    table = page.split('<section id="matrix">', 1)[1].split("</section>", 1)[0]
    html_rows = [r for r in table.split("<tr>") if r.startswith('<td class="mode">')]
    [html_declines] = [r for r in html_rows if "tiny-declines" in r]
    [html_outage] = [r for r in html_rows if "tiny-db-outage" in r]
    assert "BLIND SPOT" in html_declines and "BLIND SPOT" not in html_outage
