"""The fault-by-signal matrix of a suite: for each way checkout breaks, which signals tell, how fast.

Rows are the failure modes (one per scenario run: its ``failure_mode`` label, or
its name); columns are the signal kinds the expectations check:

=============  =================================================================
``metric``     a PromQL condition holds (``type: metric``)
``alert``      the alert reached *firing* in Prometheus (``type: alert``)
``notified``   its notification reached the receiver (``notification: true``)
``trace``      the traces show it and blame the right component (``type: trace``)
``log``        log records (correlated to their traces) appear (``type: log``)
``rum``        the browser reports it (``type: rum``)
``ledger``     the ledgers' verdict after the run: nothing lost or doubled
``quiet``      alerts that must *not* fire (``absent: true``) stayed quiet
=============  =================================================================

``hygiene`` (no card number in telemetry) is not a column: it detects no
failure mode; it stays in each run's expectations table and decides its status.
Nor is a metric condition that must not hold (``type: metric``, ``absent: true``,
e.g. an all-methods ratio that stays low while one method is down): it shows
what would *not* detect the failure, not a false alert.

A detection cell holds the time to detect (seconds from the fault's injection)
next to its floor (:mod:`paychaos.runner.floors`); when a row has several
expectations of one kind, the cell shows the first detection and says how many
were missed. A cell more than :data:`SLOW_OVER_FLOOR_S` over its floor is
*slow*. A row that ran and in which no expected alert fired is a *blind spot*.
A verdict cell (ledger) or a must-not-fire cell (quiet) holds no time. A signal
the scenario does not check whose own store was the fault's target (traces, logs
and RUM while the collector is paused or killed; metrics and alerts while
Prometheus is) is *blind*, not merely unchecked: nothing could have seen it
(:data:`STORE_OF_SIGNAL`).

Example::

    matrix = build_matrix(records)
    print(render_text(matrix))          # the terminal view; render_text(m, over=True): minus floor
    matrix.to_dict()                    # JSON (report.json's "matrix")
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from paychaos.report.model import ExpectationRecord, RunRecord

#: A detection more than this many seconds over its floor is flagged *slow*
#: (the README's detection aim: every detection within 5 s of its floor).
SLOW_OVER_FLOOR_S = 5.0

SIGNALS: tuple[str, ...] = (
    "metric",
    "alert",
    "notified",
    "trace",
    "log",
    "rum",
    "ledger",
    "quiet",
)
TITLES: Mapping[str, str] = {
    "metric": "metric",
    "alert": "alert fired",
    "notified": "notified",
    "trace": "trace",
    "log": "log",
    "rum": "RUM",
    "ledger": "ledger",
    "quiet": "no false alert",
}
#: The expectation types the matrix shows (``alert`` in three columns: fired, notified,
#: quiet), and those it leaves out on purpose (they detect no failure mode).
TYPES_SHOWN: frozenset[str] = frozenset(
    {"metric", "alert", "trace", "log", "rum", "ledger", "culprit"}
)
#: Types shown in another type's column (a culprit: its ``signal``'s, ``trace`` or ``log``).
COLUMN_OF: Mapping[str, str] = {"culprit": "trace"}
TYPES_LEFT_OUT: frozenset[str] = frozenset({"hygiene"})
CellState = Literal[
    "detected",  # every expectation of the kind detected (the cell: the first one)
    "partial",  # some detected, some missed
    "missed",  # none detected: not detected
    "quiet",  # must-not-fire alerts stayed quiet
    "fired",  # a must-not-fire alert fired
    "held",  # ledger verdict: nothing lost or doubled
    "broken",  # ledger verdict: lost or double payments
    "not_checked",  # no expectation of this kind in the scenario
    "not_run",  # the run ended before it could be judged
    "before_fault",  # the alert was already active before the fault: no detection of it
    "blind",  # not checked, and its store was the fault's target: it could not be seen
]
#: States that count as a detection (the cell holds a time).
DETECTED: frozenset[str] = frozenset({"detected", "partial"})
#: How bad a state is, for regressions across runs (higher is worse).
BADNESS: Mapping[str, int] = {
    "detected": 0,
    "quiet": 0,
    "held": 0,
    "partial": 1,
    "missed": 2,
    "fired": 2,
    "broken": 2,
    "before_fault": 2,
    "blind": 0,
}
#: The component that stores (or receives) each signal: a fault that stops it blinds the
#: signal. ``notified`` is left out: the receiver is a deployment's choice.
STORE_OF_SIGNAL: Mapping[str, str] = {
    "metric": "prometheus",
    "alert": "prometheus",
    "trace": "collector",
    "log": "collector",
    "rum": "collector",
}
#: Faults that stop a component (process or container): its signals cannot be seen meanwhile.
STOPPING_FAULTS: frozenset[str] = frozenset(
    {"kill", "pause", "restart", "docker-pause", "docker-crash", "docker-kill", "docker-restart"}
)
#: Run statuses whose expectations were judged (the others are not run or skipped).
JUDGED = ("passed", "failed")


@dataclass(frozen=True)
class Hit:
    """One expectation's part in a cell."""

    name: str
    status: str
    """``passed`` (seen in time), ``failed`` or ``not_run``."""
    detected_s: float | None = None
    floor_s: float | None = None
    before_fault: bool = False
    """An alert already active before the fault: seen, but not this fault's detection."""

    @property
    def over_s(self) -> float | None:
        if self.detected_s is None or self.floor_s is None:
            return None
        return self.detected_s - self.floor_s


@dataclass(frozen=True)
class Cell:
    """One failure mode, one signal."""

    signal: str
    state: CellState
    hits: tuple[Hit, ...] = ()
    detected_s: float | None = None
    """The first detection (detected/partial), or when a must-not-fire alert fired."""
    floor_s: float | None = None
    slow_over_floor_s: float = SLOW_OVER_FLOOR_S

    @property
    def over_s(self) -> float | None:
        if self.state not in DETECTED or self.detected_s is None or self.floor_s is None:
            return None
        return self.detected_s - self.floor_s

    @property
    def slow(self) -> bool:
        over = self.over_s
        return over is not None and over > self.slow_over_floor_s

    @property
    def missed_count(self) -> int:
        return sum(1 for h in self.hits if h.status == "failed")

    def text(self, *, over: bool = False) -> str:
        """The terminal view: ``3.1/2.0`` (time to detect / floor), or ``+1.1`` with ``over``."""
        if self.state in DETECTED:
            assert self.detected_s is not None
            if over:
                core = f"{self.over_s:+.1f}" if self.over_s is not None else "no floor"
            else:
                floor = f"{self.floor_s:.1f}" if self.floor_s is not None else "—"
                core = f"{self.detected_s:.1f}/{floor}"
            if self.state == "partial":
                core += f" {self.missed_count}✗"
            return core + (" SLOW" if self.slow else "")
        if self.state == "fired" and self.detected_s is not None:
            return f"fired ✗ {self.detected_s:.0f}s"
        return {
            "missed": "MISSED",
            "quiet": "quiet ✓",
            "fired": "fired ✗",
            "held": "held ✓",
            "broken": "broken ✗",
            "not_checked": "—",
            "not_run": "not run",
            "before_fault": "before fault",
            "blind": "store down",
        }[self.state]

    def title(self) -> str:
        """Every expectation behind the cell, one per line (HTML tooltip, JUnit)."""
        lines = []
        for h in self.hits:
            when = f" {h.detected_s:.1f}s" if h.detected_s is not None else ""
            floor = f" (floor {h.floor_s:.1f}s)" if h.floor_s is not None else ""
            pre = " (active before the fault)" if h.before_fault else ""
            lines.append(f"{h.status}{when}{floor}{pre}: {h.name}")
        return "\n".join(lines) or "not checked"

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "detected_s": self.detected_s,
            "floor_s": self.floor_s,
            "over_floor_s": self.over_s,
            "slow": self.slow,
            "text": self.text(),
            "expectations": [
                {
                    "name": h.name,
                    "status": h.status,
                    "detected_s": h.detected_s,
                    "floor_s": h.floor_s,
                    "before_fault": h.before_fault,
                }
                for h in self.hits
            ],
        }

    @classmethod
    def from_dict(cls, signal: str, raw: Mapping[str, Any], slow_over_floor_s: float) -> Cell:
        hits = tuple(
            Hit(
                str(h["name"]),
                str(h["status"]),
                h.get("detected_s"),
                h.get("floor_s"),
                bool(h.get("before_fault", False)),
            )
            for h in raw.get("expectations", [])
        )
        return cls(
            signal,
            raw["state"],
            hits,
            raw.get("detected_s"),
            raw.get("floor_s"),
            slow_over_floor_s,
        )


@dataclass(frozen=True)
class Row:
    """One failure mode (one scenario run)."""

    scenario: str
    failure_mode: str
    status: str
    reason: str
    cells: Mapping[str, Cell] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.failure_mode or self.scenario

    @property
    def judged(self) -> bool:
        """Its expectations were judged (passed or failed; not skipped, aborted, ...)."""
        return self.status in JUDGED

    @property
    def alerted(self) -> bool:
        return self.cells["alert"].state in DETECTED

    @property
    def blind_spot(self) -> bool:
        """It ran, and no expected alert fired: nobody would be paged. (An alert already
        firing before the fault proves nothing either way: flagged apart, not blind.)"""
        return self.judged and not self.alerted and not self.alert_before_fault

    @property
    def alert_before_fault(self) -> bool:
        return self.judged and self.cells["alert"].state == "before_fault"

    @property
    def slow_signals(self) -> list[str]:
        return [s for s in SIGNALS if self.cells[s].slow]

    def flags(self) -> str:
        out = []
        if self.blind_spot:
            out.append("BLIND SPOT (no alert fires)")
        if self.alert_before_fault:
            out.append("UNPROVEN (the alert was firing before the fault)")
        if self.slow_signals:
            out.append("slow: " + ", ".join(TITLES[s] for s in self.slow_signals))
        return "; ".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "failure_mode": self.label,
            "status": self.status,
            "reason": self.reason,
            "blind_spot": self.blind_spot,
            "slow": self.slow_signals,
            "cells": {s: self.cells[s].to_dict() for s in SIGNALS},
        }


@dataclass(frozen=True)
class Matrix:
    """Every row of a suite run."""

    rows: tuple[Row, ...]
    slow_over_floor_s: float = SLOW_OVER_FLOOR_S

    @property
    def judged(self) -> list[Row]:
        return [r for r in self.rows if r.judged]

    @property
    def blind_spots(self) -> list[Row]:
        return [r for r in self.rows if r.blind_spot]

    def detection_cells(self) -> list[Cell]:
        return [r.cells[s] for r in self.judged for s in SIGNALS if r.cells[s].state in DETECTED]

    def median_over_floor_s(self) -> float | None:
        overs = [c.over_s for c in self.detection_cells() if c.over_s is not None]
        return statistics.median(overs) if overs else None

    def summary(self) -> str:
        """The coverage line: alerted rows, median detection over floor, slow cells, blind spots."""
        judged = self.judged
        alerted = sum(1 for r in judged if r.alerted)
        parts = [f"{alerted} of {len(judged)} failure modes alerted"]
        median = self.median_over_floor_s()
        cells = self.detection_cells()
        if median is not None:
            parts.append(
                f"median detection {median:.1f} s over floor ({len(cells)} detecting cells)"
            )
        slow = sum(1 for c in cells if c.slow)
        parts.append(f"{slow} slow (> {self.slow_over_floor_s:g} s over floor)")
        missed = sum(1 for r in judged for s in SIGNALS if r.cells[s].state == "missed")
        if missed:
            parts.append(f"{missed} not detected")
        if self.blind_spots:
            parts.append("blind spots: " + ", ".join(r.label for r in self.blind_spots))
        unproven = [r.label for r in judged if r.alert_before_fault]
        if unproven:
            parts.append("alert firing before the fault: " + ", ".join(unproven))
        others = [r for r in self.rows if not r.judged]
        if others:
            parts.append(
                f"{len(others)} not judged ({', '.join(sorted({r.status for r in others}))})"
            )
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "slow_over_floor_s": self.slow_over_floor_s,
            "signals": list(SIGNALS),
            "median_over_floor_s": self.median_over_floor_s(),
            "blind_spots": [r.scenario for r in self.blind_spots],
            "rows": [r.to_dict() for r in self.rows],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Matrix:
        slow = float(raw.get("slow_over_floor_s", SLOW_OVER_FLOOR_S))
        rows = tuple(
            Row(
                str(r["scenario"]),
                str(r.get("failure_mode", "")),
                str(r["status"]),
                str(r.get("reason", "")),
                {s: Cell.from_dict(s, r["cells"][s], slow) for s in SIGNALS},
            )
            for r in raw.get("rows", [])
        )
        return cls(rows, slow)


# ------------------------------------------------------------------ building


def _status(exp: ExpectationRecord) -> str:
    return "not_run" if exp.status in ("not_run", "pending") else exp.status


def _detection_cell(signal: str, hits: Sequence[Hit], slow: float) -> Cell:
    if not hits:
        return Cell(signal, "not_checked", slow_over_floor_s=slow)
    seen = [
        h for h in hits if h.status == "passed" and h.detected_s is not None and not h.before_fault
    ]
    if not seen:
        state: CellState = (
            "not_run"
            if all(h.status == "not_run" for h in hits)
            else "before_fault"
            if any(h.before_fault and h.status == "passed" for h in hits)
            else "missed"
        )
        return Cell(signal, state, tuple(hits), slow_over_floor_s=slow)
    first = min(seen, key=lambda h: h.detected_s or 0.0)
    state = "partial" if any(h.status == "failed" for h in hits) else "detected"
    return Cell(signal, state, tuple(hits), first.detected_s, first.floor_s, slow)


def _before_fault(exp: ExpectationRecord) -> bool:
    return exp.active_s is not None and exp.active_s < 0


def _fired_hit(exp: ExpectationRecord) -> Hit:
    """An alert expectation seen as "did it fire": fired_s, else (no notification) detected_s."""
    fired = exp.fired_s
    if fired is None and exp.status == "passed" and not exp.notification:
        fired = exp.detected_s
    floor = exp.fired_floor_s if exp.fired_floor_s is not None else exp.floor_s
    if fired is not None:
        return Hit(exp.name, "passed", fired, floor, _before_fault(exp))
    return Hit(exp.name, "not_run" if _status(exp) == "not_run" else "failed", None, floor)


def _verdict_cell(
    signal: str, hits: Sequence[Hit], ok: CellState, bad: CellState, slow: float
) -> Cell:
    """A cell that holds a verdict, not a time (``detected_s``: when it went wrong, if known)."""
    if not hits:
        return Cell(signal, "not_checked", slow_over_floor_s=slow)
    if any(h.status == "failed" for h in hits):
        when = [h.detected_s for h in hits if h.status == "failed" and h.detected_s is not None]
        return Cell(signal, bad, tuple(hits), min(when) if when else None, slow_over_floor_s=slow)
    if any(h.status == "not_run" for h in hits):
        return Cell(signal, "not_run", tuple(hits), slow_over_floor_s=slow)
    return Cell(signal, ok, tuple(hits), slow_over_floor_s=slow)


def row_of(rec: RunRecord, slow: float = SLOW_OVER_FLOOR_S) -> Row:
    """The matrix row of one run."""
    if rec.status == "skipped":
        none = {s: Cell(s, "not_run", slow_over_floor_s=slow) for s in SIGNALS}
        return Row(rec.scenario, rec.failure_mode, rec.status, rec.reason, none)
    exps = rec.expectations
    eventually = [e for e in exps if e.mode == "eventually"]

    def timed(kind: str) -> list[Hit]:
        return [
            Hit(e.name, _status(e), e.detected_s, e.floor_s)
            for e in eventually
            if (e.signal or COLUMN_OF.get(e.type, e.type)) == kind
        ]

    alerts = [e for e in eventually if e.type == "alert"]
    notified = [
        Hit(e.name, _status(e), e.detected_s, e.floor_s, _before_fault(e))
        for e in alerts
        if e.notification
    ]
    ledger = [Hit(e.name, _status(e)) for e in exps if e.type == "ledger"]
    quiet = [  # a must-not-fire alert that fired: when (seen firing, or failed by the runner)
        Hit(e.name, _status(e), (e.fired_s if e.fired_s is not None else e.detected_s))
        for e in exps
        if e.type == "alert" and e.mode == "never"
    ]
    stopped = {
        f.target.rpartition("/")[2]
        for f in rec.faults
        if f.fault in STOPPING_FAULTS and f.injected_unix_s is not None
    }
    cells: dict[str, Cell] = {
        "metric": _detection_cell("metric", timed("metric"), slow),
        "alert": _detection_cell("alert", [_fired_hit(e) for e in alerts], slow),
        "notified": _detection_cell("notified", notified, slow),
        "trace": _detection_cell("trace", timed("trace"), slow),
        "log": _detection_cell("log", timed("log"), slow),
        "rum": _detection_cell("rum", timed("rum"), slow),
        "ledger": _verdict_cell("ledger", ledger, "held", "broken", slow),
        "quiet": _verdict_cell("quiet", quiet, "quiet", "fired", slow),
    }
    for signal, store in STORE_OF_SIGNAL.items():
        if cells[signal].state == "not_checked" and store in stopped:
            cells[signal] = Cell(signal, "blind", slow_over_floor_s=slow)
    return Row(rec.scenario, rec.failure_mode, rec.status, rec.reason, cells)


def build_matrix(
    records: Sequence[RunRecord], slow_over_floor_s: float = SLOW_OVER_FLOOR_S
) -> Matrix:
    """The matrix of a suite run (one row per record, in run order)."""
    return Matrix(tuple(row_of(r, slow_over_floor_s) for r in records), slow_over_floor_s)


# ------------------------------------------------------------------ terminal view

LABEL_W = 30
CELL_W = 13
LEGEND = (
    "cell: time to detect / floor, s from the fault (first detection; n✗: n of its checks missed); "
    "SLOW: > {slow:g} s over the floor; MISSED: not detected; —: not checked; "
    "quiet ✓/fired ✗: alerts that must not fire; ledger: nothing lost or doubled; "
    "before fault: the alert was already firing when the fault began; "
    "store down: not checked, the fault stopped the component that holds it (it could not be seen)"
)
LEGEND_OVER = (
    "cell: time to detect minus floor, s (first detection; n✗: n of its checks missed); "
    "SLOW: > {slow:g} s over the floor; MISSED: not detected; —: not checked; "
    "quiet ✓/fired ✗: alerts that must not fire; ledger: nothing lost or doubled; "
    "before fault: the alert was already firing when the fault began; "
    "store down: not checked, the fault stopped the component that holds it (it could not be seen)"
)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_text(matrix: Matrix, *, over: bool = False) -> str:
    """The matrix as a plain-text table (terminal, CI log, JUnit ``system-out``)."""
    widths = {s: max(CELL_W, len(TITLES[s]) + 1) for s in SIGNALS}
    head = f"{'failure mode':<{LABEL_W}} " + " ".join(f"{TITLES[s]:<{widths[s]}}" for s in SIGNALS)
    lines = [
        "fault-by-signal matrix: " + matrix.summary(),
        head + " run",
        "-" * (len(head) + 8),
    ]
    for row in matrix.rows:
        label = f"{_fit(row.label, LABEL_W):<{LABEL_W}} "
        if not row.judged and row.status == "skipped":
            lines.append(label + f"skipped: {row.reason}")
            continue
        cells = " ".join(f"{row.cells[s].text(over=over):<{widths[s]}}" for s in SIGNALS)
        status = row.status if row.judged else f"{row.status}: {row.reason}"
        flags = row.flags()
        lines.append((label + cells + " " + status + (f"  {flags}" if flags else "")).rstrip())
    lines.append((LEGEND_OVER if over else LEGEND).format(slow=matrix.slow_over_floor_s))
    return "\n".join(lines)
