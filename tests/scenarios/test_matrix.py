"""The fault-by-signal matrix from hand-built run journals: cells, blind spots, every view."""

from __future__ import annotations

import json
import typing
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from paychaos.cli import main
from paychaos.contracts.scenario import Expectation
from paychaos.report.history import append_history, history_matrix, read_history, regressions
from paychaos.report.html import render_html
from paychaos.report.json_report import suite_document
from paychaos.report.junit import junit_tree
from paychaos.report.matrix import (
    SLOW_OVER_FLOOR_S,
    TYPES_LEFT_OUT,
    TYPES_SHOWN,
    Matrix,
    build_matrix,
    render_text,
)
from paychaos.report.model import ExpectationRecord, RunRecord

T0 = 1_800_000_000.0


def _exp(
    name: str,
    type_: str,
    status: str,
    detected: float | None = None,
    floor: float | None = None,
    *,
    mode: str = "eventually",
    **extra: object,
) -> ExpectationRecord:
    return ExpectationRecord(
        name,
        type_,
        name,
        mode,
        "f",
        30,
        status,  # type: ignore[arg-type]
        "",
        detected,
        floor,
        **extra,  # type: ignore[arg-type]
    )


def _run(name: str, exps: list[ExpectationRecord], status: str = "passed", **kw: str) -> RunRecord:
    rec = RunRecord(name, "", f"scenarios/{name}.yaml", status=status, **kw)  # type: ignore[arg-type]
    rec.started_unix_s, rec.ended_unix_s = T0, T0 + 60
    rec.expectations = exps
    return rec


def _alerted(alert_fired_s: float = 17.5, notified_s: float = 19.0) -> RunRecord:
    return _run(
        "db-latency",
        [
            _exp(
                "DB alert",
                "alert",
                "passed",
                notified_s,
                18.0,
                notification=True,
                fired_s=alert_fired_s,
                fired_floor_s=16.0,
            ),
            _exp("p95", "metric", "passed", 3.2, 1.0),
            _exp("p95 again", "metric", "passed", 4.0, 1.0),
            _exp("traces", "trace", "passed", 2.0, 0.5),
            _exp("no error alert", "alert", "passed", mode="never"),
            _exp("ledger", "ledger", "passed", mode="final"),
            _exp("no PAN", "hygiene", "passed", mode="final"),
        ],
        failure_mode="database slow",
    )


def _unalerted() -> RunRecord:
    """A failure mode no alert catches: metrics and the browser tell, nobody is paged."""
    return _run(
        "payment-api-crash",
        [
            _exp("restarts", "metric", "passed", 2.0, 1.0),
            _exp("new process", "metric", "failed", None, 1.0),
            _exp("browser errors", "rum", "passed", 9.0, 1.0),
            _exp("ServiceDown quiet", "alert", "failed", 20.0, mode="never", fired_s=18.0),
        ],
        status="failed",
    )


def test_cells_hold_time_to_detect_next_to_the_floor_or_a_verdict() -> None:
    matrix = build_matrix([_alerted(), _unalerted()])
    ok, crash = matrix.rows
    assert ok.label == "database slow" and crash.label == "payment-api-crash"
    # alert fired and notified are separate cells, each next to its own floor
    assert (ok.cells["alert"].detected_s, ok.cells["alert"].floor_s) == (17.5, 16.0)
    assert (ok.cells["notified"].detected_s, ok.cells["notified"].floor_s) == (19.0, 18.0)
    assert ok.cells["metric"].detected_s == 3.2  # the first of two detections
    assert ok.cells["metric"].text() == "3.2/1.0" and ok.cells["metric"].text(over=True) == "+2.2"
    assert [ok.cells[s].state for s in ("log", "rum", "ledger", "quiet")] == [
        "not_checked",
        "not_checked",
        "held",
        "quiet",
    ]
    assert ok.cells["quiet"].text() == "quiet ✓" and not ok.blind_spot and ok.flags() == ""
    # one of two metric checks missed; RUM far above its floor; a must-not-fire alert fired
    assert crash.cells["metric"].state == "partial" and crash.cells["metric"].text() == "2.0/1.0 1✗"
    assert crash.cells["rum"].slow and crash.cells["rum"].over_s == 8.0 > SLOW_OVER_FLOOR_S
    assert crash.cells["rum"].text() == "9.0/1.0 SLOW"
    assert crash.cells["quiet"].state == "fired" and crash.cells["quiet"].text() == "fired ✗ 18s"
    assert crash.cells["alert"].state == "not_checked" and crash.blind_spot
    assert "BLIND SPOT" in crash.flags() and "slow: RUM" in crash.flags()


def test_a_fired_but_never_notified_alert_is_detected_as_fired_only() -> None:
    rec = _run(
        "x",
        [
            _exp(
                "A",
                "alert",
                "failed",
                None,
                18.0,
                notification=True,
                fired_s=16.2,
                fired_floor_s=16.0,
            )
        ],
        status="failed",
    )
    row = build_matrix([rec]).rows[0]
    assert row.cells["alert"].state == "detected" and row.cells["notified"].state == "missed"
    assert row.cells["notified"].text() == "MISSED" and not row.blind_spot
    never = _run("y", [_exp("A", "alert", "failed", None, 17.0)], status="failed")
    row = build_matrix([never]).rows[0]
    assert row.cells["alert"].state == "missed" and row.blind_spot


def test_an_alert_already_firing_before_the_fault_is_no_detection_and_no_blind_spot() -> None:
    rec = _run(
        "memory-pressure",
        [
            _exp(
                "OOM alert",
                "alert",
                "failed",
                None,
                2.0,
                notification=True,
                fired_s=0.3,
                fired_floor_s=1.0,
                active_s=-11.0,
            ),
            _exp("memory grows", "metric", "passed", 2.0, 1.0),
        ],
        status="failed",
    )
    row = build_matrix([rec]).rows[0]
    assert (
        row.cells["alert"].state == "before_fault" and row.cells["alert"].text() == "before fault"
    )
    assert not row.alerted and not row.blind_spot and "UNPROVEN" in row.flags()
    assert "alert firing before the fault: memory-pressure" in build_matrix([rec]).summary()
    assert "ALERT FIRING BEFORE THE FAULT" in render_html([rec])
    rec.expectations[0].active_s = 0.2  # active after the fault: its detection
    assert build_matrix([rec]).rows[0].cells["alert"].state == "detected"


def test_summary_line_counts_alerted_rows_and_the_median_over_floor() -> None:
    skipped = _run("memory-pressure", [], status="skipped")
    skipped.reason = "the target lacks memory faults"
    aborted = _run("db-outage", [_exp("A", "alert", "not_run", None, 17.0)], status="aborted")
    matrix = build_matrix([_alerted(), _unalerted(), skipped, aborted])
    summary = matrix.summary()
    assert summary.startswith("1 of 2 failure modes alerted; median detection 1.5 s over floor")
    assert "blind spots: payment-api-crash" in summary and "1 slow" in summary
    assert "2 not judged (aborted, skipped)" in summary
    assert [r.scenario for r in matrix.blind_spots] == ["payment-api-crash"]  # not the skipped
    assert matrix.rows[3].cells["alert"].state == "not_run"
    text = render_text(matrix)
    lines = text.splitlines()
    assert lines[0] == "fault-by-signal matrix: " + summary
    [crash] = [line for line in lines if line.startswith("payment-api-crash")]
    assert "BLIND SPOT" in crash and "fired ✗" in crash
    [skip] = [line for line in lines if line.startswith("memory-pressure")]
    assert "skipped: the target lacks memory faults" in skip
    assert "+2.2" in render_text(matrix, over=True)


def test_json_junit_and_html_carry_the_matrix() -> None:
    records = [_alerted(), _unalerted()]
    doc = json.loads(json.dumps(suite_document(records), default=str))
    assert doc["matrix"]["blind_spots"] == ["payment-api-crash"]
    row = doc["matrix"]["rows"][0]
    assert row["cells"]["alert"]["over_floor_s"] == 1.5 and row["cells"]["log"]["state"] == (
        "not_checked"
    )
    again = Matrix.from_dict(doc["matrix"])  # bench --from-report reads it back
    assert render_text(again) == render_text(build_matrix(records))

    root = junit_tree(records).getroot()
    assert root is not None
    assert root.get("tests") == "11"  # the matrix adds no test
    props = {
        p.get("name"): p.get("value")
        for p in root.iterfind("testsuite[@name='scenario.payment-api-crash']/properties/property")
    }
    assert props["matrix.blind_spot"] == "true" and props["matrix.rum"] == "9.0/1.0 SLOW"
    out = root.find("testsuite[@name='paychaos.matrix']/system-out")
    assert out is not None and "BLIND SPOT" in (out.text or "")
    ET.fromstring(ET.tostring(root))

    page = render_html(records)
    matrix = page.split('<section id="matrix">', 1)[1].split("</section>", 1)[0]
    rows = [r for r in matrix.split("<tr>") if r.startswith('<td class="mode">')]
    [crash] = [r for r in rows if "payment-api-crash" in r]
    [ok] = [r for r in rows if "database slow" in r]
    assert "BLIND SPOT" in crash and "BLIND SPOT" not in ok
    assert 'class="m-slow"' in crash and 'class="m-bad"' in crash and 'class="m-ok"' in ok
    assert "1 of 2 failure modes alerted" in matrix


def test_history_keeps_the_matrix_and_names_the_cells_that_regressed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for day, fired in enumerate((17.5, 17.9, 30.0)):  # the last night: 14 s over the floor
        rec = _alerted(alert_fired_s=fired, notified_s=fired + 1)
        rec.started_unix_s = T0 + day * 86400
        append_history(tmp_path, rec)
    crash = _unalerted()
    crash.started_unix_s = T0
    append_history(tmp_path, crash)
    entries = read_history(tmp_path)
    assert entries[0].cells["alert"] == {"state": "detected", "detected_s": 17.5, "floor_s": 16.0}
    assert entries[0].blind_spot is False and entries[-1].blind_spot is True
    assert regressions(entries[0], entries[1]) == []
    worse = regressions(entries[1], entries[2])
    assert worse == ["alert fired (+1.9 → +14.0 SLOW)", "notified (+0.9 → +13.0 SLOW)"]
    table = history_matrix(entries)
    assert "REGRESSED since the run before: alert fired (+1.9 → +14.0 SLOW)" in table
    assert "BLIND SPOT" in table and "1 failure mode(s) regressed" in table
    assert main(["history", "--reports-dir", str(tmp_path)]) == 0
    assert "REGRESSED" in capsys.readouterr().out


def test_every_expectation_type_has_a_column_or_is_left_out_on_purpose() -> None:
    union = typing.get_args(typing.get_args(Expectation)[0])
    types = {typing.get_args(model.model_fields["type"].annotation)[0] for model in union}
    assert types == TYPES_SHOWN | TYPES_LEFT_OUT and not TYPES_SHOWN & TYPES_LEFT_OUT


def test_a_signal_whose_store_the_fault_stopped_reads_store_down_not_unchecked() -> None:
    from paychaos.report.model import FaultRecord

    def hung(component: str) -> RunRecord:
        rec = _run("watchers", [_exp("metric", "metric", "passed", 2.0, 1.0)])
        rec.faults = [
            FaultRecord("f", "pause", f"process/{component}", {}, 10, 30, injected_unix_s=T0 + 10)
        ]
        return rec

    collector = build_matrix([hung("collector")]).rows[0].cells
    assert {s: collector[s].state for s in ("trace", "log", "rum")} == dict.fromkeys(
        ("trace", "log", "rum"), "blind"
    )
    assert collector["metric"].state == "detected"  # a checked signal is judged as ever
    assert collector["alert"].state == "not_checked"
    assert "store down" in render_text(build_matrix([hung("collector")]))
    prometheus = build_matrix([hung("prometheus")]).rows[0].cells
    assert prometheus["alert"].state == "blind" and prometheus["trace"].state == "not_checked"
    # a fault on another component, or one never injected, blinds nothing
    assert build_matrix([hung("gateway")]).rows[0].cells["trace"].state == "not_checked"
    never = hung("collector")
    never.faults[0].injected_unix_s = None
    assert build_matrix([never]).rows[0].cells["trace"].state == "not_checked"
