"""Run history: one JSON line per scenario run, appended to ``<reports>/history.jsonl``.

Each line is a summary (scenario, status, time, time-to-detect per
expectation, recovery), small enough to keep for years of nightly runs;
``paychaos history`` prints them as a table and plots time-to-detect trends.

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

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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


def entry_of(record: RunRecord) -> HistoryEntry:
    return HistoryEntry(
        scenario=record.scenario,
        status=record.status,
        started_unix_s=record.started_unix_s,
        duration_s=record.duration_s,
        recovered_s=record.recovered_s,
        detect_s={e.name: e.detected_s for e in record.expectations if e.mode == "eventually"},
        floor_s={e.name: e.floor_s for e in record.expectations if e.mode == "eventually"},
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
