"""JUnit XML for CI: a testsuite per scenario, a testcase per expectation (and recovery).

The fault-by-signal matrix rides along without adding tests: each scenario's
testsuite carries its row as properties (``matrix.<signal>``,
``matrix.blind_spot``), and a last testsuite ``paychaos.matrix`` (0 tests)
carries the coverage summary as a property and the whole matrix as
``system-out``.

Example::

    write_junit(records, Path("reports/junit.xml"))
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from paychaos.report.matrix import SIGNALS, build_matrix, render_text
from paychaos.report.model import RunRecord


def _case(suite: ET.Element, classname: str, name: str, time_s: float) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{time_s:.3f}")


def junit_tree(records: Sequence[RunRecord]) -> ET.ElementTree:
    """The JUnit document (``testsuites`` → ``testsuite`` per run → ``testcase``)."""
    root = ET.Element("testsuites", name="paychaos")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    matrix = build_matrix(records)
    for rec, row in zip(records, matrix.rows, strict=True):
        suite = ET.SubElement(root, "testsuite", name=f"scenario.{rec.scenario}")
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        props = ET.SubElement(suite, "properties")
        for key, value in (
            ("status", rec.status),
            ("source", rec.source),
            ("reason", rec.reason),
            ("traffic_driver", rec.traffic_driver),
        ):
            ET.SubElement(props, "property", name=key, value=str(value))
        for signal in SIGNALS:
            cell = row.cells[signal]
            ET.SubElement(props, "property", name=f"matrix.{signal}", value=cell.text())
        ET.SubElement(
            props, "property", name="matrix.blind_spot", value=str(row.blind_spot).lower()
        )
        classname = f"paychaos.{rec.scenario}"
        for exp in rec.expectations:
            counts["tests"] += 1
            case = _case(suite, classname, exp.name, exp.detected_s or 0.0)
            text = exp.detail
            if exp.detected_s is not None:
                text += f"\ntime to detect {exp.detected_s:.1f}s"
                if exp.floor_s is not None:
                    text += f" (floor {exp.floor_s:.1f}s)"
            if exp.status == "failed":
                counts["failures"] += 1
                ET.SubElement(case, "failure", message=exp.detail[:500]).text = text
            elif exp.status == "not_run":
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=rec.reason[:500] or "not run")
            ET.SubElement(case, "system-out").text = text
        if rec.faults:
            counts["tests"] += 1
            case = _case(suite, classname, "recovery", rec.recovered_s or 0.0)
            if rec.status in ("aborted", "skipped", "interrupted", "error"):
                tag = "error" if rec.status == "error" else "skipped"
                counts["errors" if tag == "error" else "skipped"] += 1
                ET.SubElement(case, tag, message=rec.reason[:500] or rec.status)
            elif rec.recovered_s is None:
                counts["failures"] += 1
                ET.SubElement(
                    case,
                    "failure",
                    message=f"steady state not back within {rec.recovery_within_s:g}s",
                )
        for key, count in counts.items():
            suite.set(key, str(count))
            totals[key] += count
        suite.set("time", f"{rec.duration_s:.3f}")
    summary = ET.SubElement(
        root, "testsuite", name="paychaos.matrix", tests="0", failures="0", errors="0", skipped="0"
    )
    props = ET.SubElement(summary, "properties")
    ET.SubElement(props, "property", name="summary", value=matrix.summary())
    ET.SubElement(
        props,
        "property",
        name="blind_spots",
        value=",".join(r.scenario for r in matrix.blind_spots),
    )
    ET.SubElement(summary, "system-out").text = render_text(matrix)
    for key, total in totals.items():
        root.set(key, str(total))
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(records: Sequence[RunRecord], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_tree(records).write(path, encoding="utf-8", xml_declaration=True)
    return path
