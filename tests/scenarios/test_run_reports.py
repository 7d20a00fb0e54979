"""Reports from a synthetic run journal: JSON, JUnit XML, HTML (plots), history, progress."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from paychaos.cli import main
from paychaos.report.history import append_history, history_table, read_history
from paychaos.report.html import render_html
from paychaos.report.json_report import suite_document
from paychaos.report.junit import junit_tree
from paychaos.report.model import (
    AlertEvent,
    ExpectationRecord,
    FaultRecord,
    RunRecord,
    SeriesRecord,
    suite_status,
)
from paychaos.runner.progress import Progress, ProgressState

T0 = 1_800_000_000.0


def _record(status: str = "passed", ttd: float | None = 18.0) -> RunRecord:
    rec = RunRecord("db-latency", "slow DB", "scenarios/db-latency.yaml", status=status)  # type: ignore[arg-type]
    rec.started_unix_s, rec.traffic_started_unix_s, rec.ended_unix_s = T0, T0 + 1, T0 + 70
    rec.faults = [
        FaultRecord(
            "slow-db", "db-latency", "proxy/postgres", {"latency_ms": 250}, 10, 25, T0 + 11, T0 + 36
        )
    ]
    rec.expectations = [
        ExpectationRecord(
            "alert fires",
            "alert",
            "DatabaseLatencyHigh fires",
            "eventually",
            "slow-db",
            35,
            "passed" if ttd else "failed",
            "firing",
            ttd,
            17.0,
        ),
        ExpectationRecord(
            "ledger", "ledger", "reconcile", "final", None, 60, "passed", "600 checkouts: 0 lost"
        ),
    ]
    rec.recovered_s = 8.5
    rec.alert_events = [
        AlertEvent("DatabaseLatencyHigh", {"operation": "insert_payment"}, T0 + 29, T0 + 60)
    ]
    rec.series = {
        "request rate (req/s)": [
            SeriesRecord({"method": m}, [(T0 + i, 3.0 + (i % 5)) for i in range(0, 70, 2)])
            for m in ("visa", "paypal")
        ]
    }
    return rec


def test_json_junit_and_html_views_of_a_run() -> None:
    ok, bad = _record(), _record("failed", ttd=None)
    bad.scenario = "db-outage"
    doc = suite_document([ok, bad])
    assert doc["status"] == "failed" and suite_status([ok]) == "passed"
    assert (
        json.loads(json.dumps(doc, default=str))["runs"][0]["expectations"][0]["over_floor_s"]
        == 1.0
    )
    root = junit_tree([ok, bad]).getroot()
    assert root is not None
    assert (root.get("tests"), root.get("failures")) == ("6", "1")
    failure = root.find(
        "testsuite[@name='scenario.db-outage']/testcase[@name='alert fires']/failure"
    )
    assert failure is not None
    html = render_html([ok, bad])
    assert html.count("data:image/png;base64,") == 2 and "<td>17.0</td>" in html
    ET.fromstring(ET.tostring(root))  # well-formed


def test_history_table_trend_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for day, ttd in enumerate((18.0, 19.5, 17.2)):
        rec = _record(ttd=ttd)
        rec.started_unix_s = T0 + day * 86400
        append_history(tmp_path, rec)
    with (tmp_path / "history.jsonl").open("a") as fh:
        fh.write("{torn line\n")
    entries = read_history(tmp_path)
    assert [e.detect_s["alert fires"] for e in entries] == [18.0, 19.5, 17.2]
    assert "19.5" in history_table(entries)
    assert main(["history", "--reports-dir", str(tmp_path)]) == 0
    assert (tmp_path / "trend.png").read_bytes()[:4] == b"\x89PNG"
    assert "db-latency" in capsys.readouterr().out
    assert main(["history", "--reports-dir", str(tmp_path / "none")]) == 1


def test_progress_refreshes_one_line_on_a_tty_and_prints_lines_otherwise() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    state = ProgressState("fault", 12.0, 9.8, 0.02, ("slow-db",), 1, 5, "db-latency")
    tty, plain = Tty(), io.StringIO()
    for out in (tty, plain):
        progress = Progress(out)
        progress.update(state, force=True)
        progress.update(state, force=True)
        progress.close()
    assert tty.getvalue().count("\r") == 2 and tty.getvalue().count("\n") == 1
    assert plain.getvalue().count("\n") == 2 and "faults slow-db" in plain.getvalue()
