"""A self-contained HTML report: plots (PNG, base64-embedded) and the expectations table.

Per run: request rate, error ratio and p95 latency per payment method over
time (Prometheus ``query_range``), fault windows shaded, alert firings marked;
when Prometheus has no data (blinded on purpose), the client's own view
(rate and error ratio the traffic driver measured) is plotted instead.
Uses matplotlib's object API with the Agg canvas (no global pyplot state).

Example::

    write_html(records, Path("reports/report.html"))
"""

from __future__ import annotations

import base64
import html
import io
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from paychaos.report.matrix import SIGNALS, TITLES, Cell, Matrix, build_matrix
from paychaos.report.model import (
    FaultRecord,
    RunRecord,
    SeriesRecord,
    alert_title,
    distinguishing_labels,
)

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px}
th{background:#f3f3f3}.passed{color:#1a7f37;font-weight:600}.failed,.error,.interrupted{color:#c62828;font-weight:600}
.aborted,.not_run{color:#9a6700;font-weight:600}img{max-width:100%}section{margin-bottom:3em}
code{background:#f6f8fa;padding:1px 4px}
table.matrix td{text-align:center;min-width:7em}table.matrix td.mode{text-align:left}
.m-ok{background:#dafbe1}.m-slow{background:#fff1c2}.m-bad{background:#ffd7d5;font-weight:600}
.m-none{background:#f6f6f6;color:#888;font-size:12px}.m-blind{background:#e8e8e8;color:#555;font-size:12px;font-style:italic}.m-skip{color:#888;font-style:italic;text-align:left}
.blind{background:#c62828;color:#fff;font-size:11px;font-weight:700;padding:1px 5px;border-radius:3px}
.coverage{font-size:16px;font-weight:600}small{color:#555}
"""


def png_base64(fig: Figure) -> str:
    """Render a figure to a base64 PNG (for ``<img src="data:image/png;base64,...">``)."""
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return base64.b64encode(buffer.getvalue()).decode()


def _with_gaps(points: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Break the line where samples are missing (e.g. while Prometheus was down)."""
    steps = sorted(b[0] - a[0] for a, b in itertools.pairwise(points))
    step = steps[len(steps) // 2] if steps else 0.0
    xs: list[float] = []
    ys: list[float] = []
    for index, (x, y) in enumerate(points):
        if index and step and x - points[index - 1][0] > 3 * step:
            xs.append(x)
            ys.append(float("nan"))
        xs.append(x)
        ys.append(y)
    return xs, ys


#: Faults that are events of the system's life (a release), not failures: green marks.
EVENT_FAULTS = frozenset({"deploy"})


def fault_label(fault: FaultRecord) -> str:
    """The timeline's label of a fault: ``deploy v2.0``, ``pause collector``, ``db-latency``."""
    detail = fault.params.get("version") or fault.params.get("component")
    return f"{fault.fault} {detail}" if detail else fault.fault


def _plot_run(rec: RunRecord) -> str:
    t0 = rec.traffic_started_unix_s or rec.started_unix_s
    panels: list[tuple[str, list[SeriesRecord]]] = [
        (title, series) for title, series in rec.series.items() if any(s.points for s in series)
    ]
    if not panels and rec.client_timeline:
        panels = [
            (
                "client request rate (req/s)",
                [SeriesRecord({"method": "all"}, [(t, r) for t, r, _ in rec.client_timeline])],
            ),
            (
                "client error ratio",
                [SeriesRecord({"method": "all"}, [(t, e) for t, _, e in rec.client_timeline])],
            ),
        ]
    if not panels:
        return "<p>No metrics were available to plot.</p>"
    events = rec.alert_events
    heights = [2.6] * len(panels)
    if events:  # a lane on top: one labelled bar per alert firing
        heights.insert(0, 0.5 + 0.28 * len(events))
    fig = Figure(figsize=(10, sum(heights)), layout="constrained")
    grid = {"height_ratios": heights}
    every = fig.subplots(len(heights), 1, sharex=True, squeeze=False, gridspec_kw=grid)[:, 0]
    lane, axes = (every[0], every[1:]) if events else (None, every)
    for ax, (title, series) in zip(axes, panels, strict=True):
        for s in series:
            if s.points:
                xs, ys = _with_gaps([(t - t0, v) for t, v in s.points])
                ax.plot(xs, ys, label=s.labels.get("method", "all"), linewidth=1.4)
        for fault in rec.faults:
            if fault.injected_unix_s is not None:
                end = fault.reverted_unix_s or rec.ended_unix_s
                ax.axvspan(fault.injected_unix_s - t0, end - t0, color="tab:red", alpha=0.12)
        for event in events:
            ax.axvline(event.first_unix_s - t0, color="tab:purple", linestyle="--", linewidth=0.9)
        ax.set_title(title, fontsize=10, loc="left")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="upper right")
    for fault in rec.faults:  # the MELT events: what was injected or deployed, and when
        if fault.injected_unix_s is not None:
            axes[0].annotate(
                fault_label(fault),
                (fault.injected_unix_s - t0, 0.02),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                rotation=90,
                va="bottom",
                color="tab:green" if fault.fault in EVENT_FAULTS else "tab:red",
            )
    if lane is not None:
        _alert_lane(lane, rec, t0)
    axes[-1].set_xlabel(
        "seconds since traffic start (shaded: faults, labelled at their start; dashed: an "
        "alert first firing, named in the top lane)"
    )
    return f'<img alt="metrics of {html.escape(rec.scenario)}" src="data:image/png;base64,{png_base64(fig)}">'


def _alert_lane(lane: Any, rec: RunRecord, t0: float) -> None:
    """One row per alert firing: a bar from its first to its last sighting, named with
    the labels that tell it from the other firings of the same alert."""
    events = rec.alert_events
    x_min, x_max = lane.get_xlim()
    for row, event in enumerate(events):
        y = len(events) - 1 - row
        start = event.first_unix_s - t0
        end = max(event.last_unix_s - t0, start + 0.5)
        lane.plot([start, end], [y, y], color="tab:purple", linewidth=5, solid_capstyle="butt")
        title = alert_title(event.name, distinguishing_labels(event, events))
        right = end < x_min + 0.6 * (x_max - x_min)  # room after the bar: name it there
        lane.annotate(
            title,
            (end if right else start, y),
            xytext=(4 if right else -4, 0),
            textcoords="offset points",
            ha="left" if right else "right",
            va="center",
            fontsize=7,
            color="tab:purple",
        )
    lane.set_ylim(-0.7, len(events) - 0.3)
    lane.set_yticks([])
    lane.set_title("alerts firing", fontsize=10, loc="left")
    lane.grid(alpha=0.3, axis="x")


def _late_firings(rec: RunRecord) -> str:
    late = rec.late_firings()
    if not late:
        return ""
    items = "".join(
        f"<li><code>{html.escape(x.title)}</code> first fired {x.after_recovery_s:.1f} s "
        "after recovery</li>"
        for x in late
    )
    return f'<p class="failed">Late firings (after the run declared recovery):</p><ul>{items}</ul>'


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _run_section(rec: RunRecord) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(x.name)}</td><td>{e(x.type)}</td><td>{e(x.after or '')}</td>"
        f"<td>{x.within_s:g}</td><td>{_fmt(x.detected_s)}</td><td>{_fmt(x.floor_s)}</td>"
        f'<td class="{x.status}">{x.status}</td><td>{e(x.detail)}</td></tr>'
        for x in rec.expectations
    )
    faults = "".join(
        f"<tr><td>{e(f.id)}</td><td>{e(f.fault)}</td><td>{e(f.target)}</td>"
        f"<td><code>{e(str(f.params))}</code>"
        + (
            f"<br>injected: <code>{e(', '.join(f'{k}={v}' for k, v in f.facts.items()))}</code>"
            if f.facts
            else ""
        )
        + f"</td><td>{f.at_s:g}</td><td>{f.duration_s:g}</td></tr>"
        for f in rec.faults
    )
    probes = "".join(
        f'<tr><td>{p.phase}</td><td>{e(p.name)}</td><td class="{"passed" if p.ok else "failed"}">'
        f"{'holds' if p.ok else 'violated'}</td><td>{e(p.detail)}</td></tr>"
        for p in rec.probes
    )
    started = datetime.fromtimestamp(rec.started_unix_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"""<section><h2>{e(rec.scenario)} <span class="{rec.status}">{rec.status}</span></h2>
<p>{e(rec.description)}</p>
<p>{started}, {rec.duration_s:.0f}s; traffic {e(str(rec.traffic))} ({e(rec.traffic_driver)});
recovered in {_fmt(rec.recovered_s)}s (deadline {rec.recovery_within_s:g}s, floor {_fmt(rec.recovery_floor_s)}s).
{e(rec.reason)}</p>
{_late_firings(rec)}{_plot_run(rec)}
<h3>Expectations</h3><table><tr><th>expectation</th><th>type</th><th>after fault</th><th>deadline s</th>
<th>time to detect s</th><th>floor s</th><th>status</th><th>detail</th></tr>{rows}</table>
<h3>Faults</h3><table><tr><th>id</th><th>fault</th><th>target</th><th>params</th><th>at s</th>
<th>duration s</th></tr>{faults}</table>
<h3>Steady state</h3><table><tr><th>phase</th><th>probe</th><th>result</th><th>detail</th></tr>{probes}</table>
</section>"""


_CELL_CLASS = {
    "detected": "m-ok",
    "quiet": "m-ok",
    "held": "m-ok",
    "partial": "m-slow",
    "missed": "m-bad",
    "fired": "m-bad",
    "broken": "m-bad",
    "not_checked": "m-none",
    "not_run": "m-none",
    "before_fault": "m-bad",
    "blind": "m-blind",
}


def _matrix_cell(cell: Cell) -> str:
    e = html.escape
    css = "m-slow" if cell.slow else _CELL_CLASS[cell.state]
    if cell.state in ("detected", "partial") and cell.detected_s is not None:
        floor = f"floor {cell.floor_s:.1f} s" if cell.floor_s is not None else "no floor"
        over = f", {cell.over_s:+.1f} s" if cell.over_s is not None else ""
        body = f"<b>{cell.detected_s:.1f} s</b><br><small>{floor}{over}</small>"
        if cell.slow:
            body += "<br><small><b>slow</b></small>"
        if cell.state == "partial":
            body += f"<br><small>{cell.missed_count} of {len(cell.hits)} not detected</small>"
    else:
        body = {
            "missed": "not detected",
            "quiet": "quiet ✓",
            "fired": "fired ✗",
            "held": "held ✓",
            "broken": "broken ✗",
            "not_checked": "not checked",
            "not_run": "not run",
            "before_fault": "already firing before the fault",
            "blind": "store down: could not be seen",
        }[cell.state]
        if cell.state == "fired" and cell.detected_s is not None:
            body += f"<br><small>at {cell.detected_s:.1f} s</small>"
    return f'<td class="{css}" title="{e(cell.title())}">{body}</td>'


def render_matrix(matrix: Matrix) -> str:
    """The fault-by-signal matrix as a coloured table, its coverage line on top."""
    e = html.escape
    head = "".join(f"<th>{e(TITLES[s])}</th>" for s in SIGNALS)
    rows = []
    for row in matrix.rows:
        label = f"{e(row.label)}<br><small>{e(row.scenario)}</small>"
        if row.blind_spot:
            label += ' <span class="blind">BLIND SPOT</span>'
        if row.alert_before_fault:
            label += ' <span class="blind">ALERT FIRING BEFORE THE FAULT</span>'
        if row.status == "skipped":
            rows.append(
                f'<tr><td class="mode">{label}</td><td class="m-skip" colspan="{len(SIGNALS) + 1}">'
                f"skipped: {e(row.reason)}</td></tr>"
            )
            continue
        cells = "".join(_matrix_cell(row.cells[s]) for s in SIGNALS)
        status = f'<td class="{row.status}">{row.status}</td>'
        rows.append(f'<tr><td class="mode">{label}</td>{cells}{status}</tr>')
    return f"""<section id="matrix"><h2>Fault-by-signal matrix</h2>
<p class="coverage">{e(matrix.summary())}</p>
<table class="matrix"><tr><th>failure mode</th>{head}<th>run</th></tr>{"".join(rows)}</table>
<p><small>Each cell: time to detect (s from the fault's injection), its floor and the difference
(the first detection when several checks look at the signal; hover for each). Yellow: more than
{matrix.slow_over_floor_s:g} s over the floor. Red: not detected, or an alert that must stay quiet
fired, or payments lost or doubled. Grey italics (store down): the signal's own store was the
component the fault stopped (it could not be seen). A blind spot is a failure mode in which no expected alert fires.
</small></p></section>"""


def render_html(records: Sequence[RunRecord]) -> str:
    """The whole page."""
    summary = "".join(
        f'<tr><td>{html.escape(r.scenario)}</td><td class="{r.status}">{r.status}</td>'
        f"<td>{sum(1 for x in r.expectations if x.status == 'passed')}/{len(r.expectations)}</td>"
        f"<td>{r.duration_s:.0f}</td></tr>"
        for r in records
    )
    body = "".join(_run_section(r) for r in records)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>paychaos report</title>
<style>{_STYLE}</style></head><body><h1>paychaos report</h1>
{render_matrix(build_matrix(records))}
<table><tr><th>scenario</th><th>status</th><th>expectations met</th><th>duration s</th></tr>{summary}</table>
{body}</body></html>"""


def write_html(records: Sequence[RunRecord], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(records), encoding="utf-8")
    return path
