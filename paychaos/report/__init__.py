"""Reports of runs: the journal model, JSON, JUnit XML, HTML with plots, history."""

from __future__ import annotations

from paychaos.report.history import append_history, read_history
from paychaos.report.html import write_html
from paychaos.report.json_report import write_json
from paychaos.report.junit import write_junit
from paychaos.report.model import RunRecord, suite_status

__all__ = [
    "RunRecord",
    "append_history",
    "read_history",
    "suite_status",
    "write_html",
    "write_json",
    "write_junit",
]
