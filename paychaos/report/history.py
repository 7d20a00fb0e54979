"""Run history: one JSON line per scenario run, appended to ``<reports>/history.jsonl``.

Each line is a summary (scenario, status, time, time-to-detect per
expectation, recovery, and the run's row of the fault-by-signal matrix),
small enough to keep for years of nightly runs; ``paychaos history`` prints
them as a table, the matrix across runs with the cells that regressed since
the run before, and plots time-to-detect trends.

Example::

    append_history(Path("reports"), record)
    entries = read_history(Path("reports"))
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from paychaos.report.matrix import (
    BADNESS,
    SIGNALS,
    SLOW_OVER_FLOOR_S,
    TITLES,
    Cell,
    Hit,
    row_of,
)
from paychaos.report.model import RunRecord

HISTORY_FILE = "history.jsonl"


@dataclass(frozen=True)
class HistoryEntry:
    """One past run, as the history keeps it."""

    scenario: str
    status: str
    started_unix_s: float
    duration_s: float
    recovered_s: float | None
    detect_s: dict[str, float | None] = field(default_factory=dict)
    floor_s: dict[str, float | None] = field(default_factory=dict)
    failure_mode: str = ""
    blind_spot: bool | None = None
    """The run's matrix row: no expected alert fired (None: not judged, or an old line)."""
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The run's matrix row: signal → ``{state, detected_s, floor_s[, missed]}``."""

    def cell(self, signal: str, slow_over_floor_s: float = SLOW_OVER_FLOOR_S) -> Cell | None:
        raw = self.cells.get(signal)
        if not raw:
            return None
        missed = tuple(Hit("", "failed") for _ in range(int(raw.get("missed", 0))))
        return Cell(
            signal,
            raw["state"],
            missed,
            raw.get("detected_s"),
            raw.get("floor_s"),
            slow_over_floor_s,
        )


def _cells_of(record: RunRecord) -> tuple[bool | None, dict[str, dict[str, Any]]]:
    row = row_of(record)
    if not row.judged:
        return None, {}
    cells: dict[str, dict[str, Any]] = {}
    for signal in SIGNALS:
        cell = row.cells[signal]
        raw: dict[str, Any] = {"state": cell.state}
        if cell.detected_s is not None:
            raw["detected_s"] = round(cell.detected_s, 3)
        if cell.floor_s is not None:
            raw["floor_s"] = round(cell.floor_s, 3)
        if cell.missed_count and cell.state == "partial":
            raw["missed"] = cell.missed_count
        cells[signal] = raw
    return row.blind_spot, cells


def entry_of(record: RunRecord) -> HistoryEntry:
    blind, cells = _cells_of(record)
    return HistoryEntry(
        scenario=record.scenario,
        status=record.status,
        started_unix_s=record.started_unix_s,
        duration_s=record.duration_s,
        recovered_s=record.recovered_s,
        detect_s={e.name: e.detected_s for e in record.expectations if e.mode == "eventually"},
        floor_s={e.name: e.floor_s for e in record.expectations if e.mode == "eventually"},
        failure_mode=record.failure_mode,
        blind_spot=blind,
        cells=cells,
    )


def append_history(reports_dir: Path, record: RunRecord) -> Path:
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / HISTORY_FILE
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry_of(record).__dict__) + "\n")
    return path


def read_history(reports_dir: Path) -> list[HistoryEntry]:
    """Every readable line (a corrupt line is skipped, never fatal)."""
    path = reports_dir / HISTORY_FILE
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            raw = json.loads(line)
            entries.append(
                HistoryEntry(
                    scenario=str(raw["scenario"]),
                    status=str(raw["status"]),
                    started_unix_s=float(raw["started_unix_s"]),
                    duration_s=float(raw.get("duration_s", 0.0)),
                    recovered_s=raw.get("recovered_s"),
                    detect_s=dict(raw.get("detect_s") or {}),
                    floor_s=dict(raw.get("floor_s") or {}),
                    failure_mode=str(raw.get("failure_mode") or ""),
                    blind_spot=raw.get("blind_spot"),
                    cells={
                        str(k): dict(v)
                        for k, v in (raw.get("cells") or {}).items()
                        if isinstance(v, dict) and "state" in v
                    },
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return entries


def _time(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%d %H:%M")


def history_table(entries: Sequence[HistoryEntry], scenario: str | None = None) -> str:
    """A plain-text table: one row per run, the slowest detection and recovery."""
    lines = [
        f"{'started (UTC)':<17} {'scenario':<24} {'status':<11} {'max TTD s':>9} {'recover s':>9}"
    ]
    for e in entries:
        if scenario and e.scenario != scenario:
            continue
        ttds = [v for v in e.detect_s.values() if v is not None]
        max_ttd = f"{max(ttds):.1f}" if ttds else "—"
        rec = f"{e.recovered_s:.1f}" if e.recovered_s is not None else "—"
        lines.append(
            f"{_time(e.started_unix_s):<17} {e.scenario:<24} {e.status:<11} {max_ttd:>9} {rec:>9}"
        )
    return "\n".join(lines)


def regressions(
    before: HistoryEntry, after: HistoryEntry, slow_over_floor_s: float = SLOW_OVER_FLOOR_S
) -> list[str]:
    """The cells of ``after`` worse than in ``before`` (the same failure mode, an earlier run):
    a worse state (detected → partly or not detected, quiet → fired, held → broken), a
    detection newly more than ``slow_over_floor_s`` over its floor, a new blind spot."""
    out = []
    if after.blind_spot and before.blind_spot is False:
        out.append("blind spot (no alert fires any more)")
    for signal in SIGNALS:
        old, new = before.cell(signal, slow_over_floor_s), after.cell(signal, slow_over_floor_s)
        if old is None or new is None:
            continue
        was, now = old.text(over=True), new.text(over=True)
        if BADNESS.get(new.state, -1) > BADNESS.get(old.state, 99) or (new.slow and not old.slow):
            out.append(f"{TITLES[signal]} ({was} → {now})")
    return out


def history_matrix(
    entries: Sequence[HistoryEntry], scenario: str | None = None, last: int = 5
) -> str:
    """The matrix across runs: per failure mode, its last ``last`` runs (time to detect minus
    floor in each cell), then the cells that regressed since the run before the latest."""
    by_scenario: dict[str, list[HistoryEntry]] = defaultdict(list)
    for e in entries:
        if e.cells and (not scenario or e.scenario == scenario):
            by_scenario[e.scenario].append(e)
    if not by_scenario:
        return "no fault-by-signal matrix in this history yet"
    width = {s: max(11, len(TITLES[s]) + 1) for s in SIGNALS}
    lines = [
        f"fault-by-signal matrix across runs (time to detect minus floor, s; SLOW: > "
        f"{SLOW_OVER_FLOOR_S:g} s over the floor; the last {last} runs of each failure mode)"
    ]
    changed = 0
    for name, runs in by_scenario.items():
        runs.sort(key=lambda e: e.started_unix_s)
        label = runs[-1].failure_mode
        lines.append("")
        lines.append(f"{label} ({name})" if label and label != name else name)
        lines.append(
            f"  {'started (UTC)':<17} " + " ".join(f"{TITLES[s]:<{width[s]}}" for s in SIGNALS)
        )
        for e in runs[-last:]:
            texts = [(c.text(over=True) if (c := e.cell(s)) else "") for s in SIGNALS]
            cells = " ".join(f"{t:<{width[s]}}" for s, t in zip(SIGNALS, texts, strict=True))
            flag = "  BLIND SPOT" if e.blind_spot else ""
            lines.append(f"  {_time(e.started_unix_s):<17} {cells}{e.status:>7}{flag}".rstrip())
        if len(runs) >= 2:
            worse = regressions(runs[-2], runs[-1])
            if worse:
                changed += 1
                lines.append("  REGRESSED since the run before: " + "; ".join(worse))
    lines.append("")
    lines.append(
        f"{changed} failure mode(s) regressed in their latest run"
        if changed
        else "no cell regressed in the latest run of any failure mode"
    )
    return "\n".join(lines)


def plot_trends(entries: Sequence[HistoryEntry], path: Path) -> Path:
    """Time-to-detect per scenario (its slowest expectation) across runs, as a PNG."""
    by_scenario: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for e in entries:
        ttds = [v for v in e.detect_s.values() if v is not None]
        if ttds:
            by_scenario[e.scenario].append((e.started_unix_s, max(ttds)))
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    for name, points in sorted(by_scenario.items()):
        points.sort()
        ax.plot(
            [datetime.fromtimestamp(t, UTC) for t, _ in points],  # type: ignore[arg-type]
            [v for _, v in points],
            marker="o",
            label=name,
        )
    ax.set_ylabel("slowest time to detect (s)")
    ax.set_title("time to detect per scenario across runs", fontsize=10, loc="left")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig).print_png(str(path))
    return path
