"""The budget as a readable table (a unit in every cell) and as JSON.

:func:`run_budget` measures a target and projects it; :func:`render_text` and
:func:`to_json` present the result. Example::

    report = run_budget(sources_of(target), tier=load_limits(), window_s=600)
    print(render_text(report))
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from paychaos.budget.limits import DEFAULT_LIMITS, FreeTier
from paychaos.budget.measure import CHECKOUTS_METRIC, NOT_SHIPPED, Measurement, Sources, measure
from paychaos.budget.project import (
    DEFAULT_SIZES,
    Explosion,
    Fit,
    Projection,
    Rates,
    Usage,
    project,
)

#: Alloy's default scrape interval (``prometheus.scrape``): one sample a minute per series.
DEFAULT_SHIP_INTERVAL_S = 60.0


@dataclass(frozen=True)
class BudgetReport:
    measurement: Measurement
    projection: Projection | None
    """None when the window held no checkouts (nothing to divide by)."""
    ship_interval_s: float
    limits_file: Path

    @property
    def complete(self) -> bool:
        return self.projection is not None


def rates_of(m: Measurement, ship_interval_s: float = DEFAULT_SHIP_INTERVAL_S) -> Rates:
    """The projection's inputs: shipped series at ``ship_interval_s``, bytes per checkout."""
    return Rates(
        series=float(m.shipped_series),
        metric_series={name: float(n) for name, n in m.shipped_by_metric.items()},
        dpm_per_series=60.0 / ship_interval_s,
        log_bytes_per_checkout=m.per_checkout("logs"),
        trace_bytes_per_checkout=m.per_checkout("traces"),
        rum_bytes_per_checkout=m.per_checkout("rum"),
    )


def run_budget(
    sources: Sources,
    *,
    tier: FreeTier,
    limits_file: Path = DEFAULT_LIMITS,
    window_s: float = 600.0,
    settle_s: float = 10.0,
    sizes: Sequence[float] = DEFAULT_SIZES,
    explosion: Explosion | None = None,
    ship_interval_s: float = DEFAULT_SHIP_INTERVAL_S,
    not_shipped: tuple[str, ...] = NOT_SHIPPED,
) -> BudgetReport:
    """Measure ``sources`` and project them against ``tier``."""
    m = measure(sources, window_s=window_s, settle_s=settle_s, not_shipped=not_shipped)
    projection = None
    if m.checkouts >= 0.5:
        projection = project(rates_of(m, ship_interval_s), tier, sizes, explosion)
    return BudgetReport(m, projection, ship_interval_s, limits_file)


# ------------------------------------------------------------------ formatting


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _bytes(value: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(value) >= size:
            return f"{value / size:,.2f} {unit}"
    return f"{value:,.0f} B"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}" if value < 0.1 else f"{value:.0%}"


def _size(value: float) -> str:
    if value == math.inf:
        return "any size"
    if value <= 0:
        return "none (over the limit at any size)"
    return f"{_n(value)} checkouts/day"


def _usage_cell(u: Usage) -> str:
    if u.used is None:
        return "not measured"
    amount = f"{_n(u.used)} series" if u.unit == "series" else f"{u.used:,.2f} GB/month"
    flag = "" if u.fits else " OVER"
    return f"{amount} ({_pct(u.share)}){flag}"


def _limit_name(limit: str, tier: FreeTier) -> str:
    return {
        "series": f"metrics ({_n(tier.metrics.active_series)} active series)",
        "logs": f"logs ({tier.logs.gb_per_month:g} GB/month)",
        "traces": f"traces ({tier.traces.gb_per_month:g} GB/month)",
    }[limit]


def _verdict(fit: Fit, tier: FreeTier) -> str:
    first = fit.first_limit
    text = f"largest store that fits: {_size(fit.largest)}"
    text += (
        f"; first limit hit: {_limit_name(first, tier)}"
        if first
        else "; no limit is ever hit by the measured signals"
    )
    if fit.unmeasured:
        text += f" (not counting {', '.join(fit.unmeasured)}: not measured)"
    return text


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in rows
    ]


def _usage_table(usage: dict[float, list[Usage]] | Any) -> list[str]:
    rows = [["checkouts/day", "metrics (billable series)", "logs", "traces"]]
    for n, cells in usage.items():
        rows.append([f"{_n(n)} checkouts/day", *(_usage_cell(u) for u in cells)])
    return _table(rows)


def render_text(report: BudgetReport) -> str:
    m = report.measurement
    end = datetime.datetime.fromtimestamp(m.until_unix_s, datetime.UTC)
    lines = [
        f"paychaos budget: target {m.target}, {m.window_s:g} s window ending "
        f"{end:%Y-%m-%d %H:%M:%S} UTC",
        f"  checkouts in the window: {_n(m.checkouts)} checkouts (growth of {CHECKOUTS_METRIC})",
        "",
    ]
    interval = (
        f", scrape every {m.scrape_interval_s:.3g} s" if m.scrape_interval_s is not None else ""
    )
    rows = [
        ["measured", "in the window", "per checkout", "rate"],
        [
            "active series",
            f"{_n(m.series_total)} series",
            "- (does not grow with checkouts)",
            f"{m.dpm_per_series:.1f} DPM/series{interval}",
        ],
        ["samples", f"{_n(m.samples_in_window)} samples", "-",
         f"{m.samples_per_s:,.1f} samples/s (last minute)"],
    ]  # fmt: skip
    names = {"logs": ("logs", "records"), "traces": ("traces", "spans"), "rum": ("RUM", "events")}
    for signal, (label, items) in names.items():
        volume = m.volumes.get(signal)
        if volume is None:
            rows.append([label, "not measured", "-", "-"])
            continue
        per = m.per_checkout(signal)
        rows.append(
            [
                label,
                f"{_n(volume.items)} {items}, {_bytes(volume.bytes)}",
                "-" if per is None else f"{_bytes(per)}/checkout",
                f"{_bytes(volume.bytes / m.window_s)}/s",
            ]
        )
    lines += _table(rows)
    if m.head_series is not None:
        agreement = m.head_agreement
        lines.append(
            f"  Prometheus' own prometheus_tsdb_head_series: {_n(m.head_series)} series "
            f"(this count {agreement:+.1%})"
            if agreement is not None
            else f"  Prometheus' own prometheus_tsdb_head_series: {_n(m.head_series)} series"
        )
    for signal, why in m.unmeasured.items():
        lines.append(f"  {signal} not measured: {why}")
    lines.append(
        "  bytes: the items as the collector stored them (text fields as UTF-8, attributes "
        "as JSON, 8 bytes per number); the window's idle telemetry is charged to its checkouts"
    )

    lines += ["", "Series by job"]
    rows = [["job", "series", "share", "shipped to the SaaS (layout C)"]]
    for job, n in m.series_by_job.items():
        shipped = "no" if job in m.not_shipped else "yes"
        rows.append([job, f"{_n(n)} series", _pct(n / m.series_total), shipped])
    lines += _table(rows)
    if m.top_metrics:
        lines += ["", "Top metrics (every job)"]
        rows = [["metric", "series", "label with the most values"]]
        for share in m.top_metrics:
            label = (
                f"{share.top_label} ({_n(share.top_label_values)} values)"
                if share.top_label
                else "-"
            )
            rows.append([share.name, f"{_n(share.series)} series", label])
        lines += _table(rows)
    if m.top_labels:
        shown = ", ".join(f"{name} ({_n(n)} values)" for name, n in m.top_labels[:5])
        lines.append(f"  labels with the most values in the head: {shown}")
    lines += [f"  note: {note}" for note in m.notes]

    p = report.projection
    lines += ["", f"Projection against {report.limits_file}"]
    if p is None:
        lines.append(
            "  cannot project: no checkouts were counted in the window; send some first "
            "(e.g. paychaos demo --target ...) or widen --window"
        )
        return "\n".join(lines)
    tier = p.tier
    lines.append(f"  {tier.describe()}")
    lines.append(f"  source: {' '.join(tier.source.split())}")
    measured_dpm = m.dpm_per_series
    billed = m.shipped_series * max(1.0, measured_dpm / tier.metrics.included_dpm_per_series)
    lines.append(
        f"  shipped: {_n(m.shipped_series)} series at {p.rates.dpm_per_series:g} DPM (Alloy "
        f"scraping every {report.ship_interval_s:g} s); at this stack's {measured_dpm:.1f} DPM "
        f"they would bill as {_n(billed)} series"
    )
    lines += _usage_table(dict(p.usage))
    lines.append(f"  {_verdict(p.fit, tier)}")
    if p.explosion is not None and p.exploded_fit is not None:
        before = int(p.rates.metric_series.get(p.explosion.metric, 0))
        lines += ["", f"Cardinality explosion: {p.explosion.describe()}"]
        lines.append(f"  {p.explosion.metric} has {_n(before)} series today")
        lines += _usage_table(dict(p.exploded_usage))
        lines.append(f"  {_verdict(p.exploded_fit, tier)}")
    return "\n".join(lines)


def summary_line(report: BudgetReport) -> str:
    """The budget in one line (the OOM demo's terminal summary)."""
    m, p = report.measurement, report.projection
    if p is None:
        return (
            f"free-tier fit: not projected (no checkouts counted in the {m.window_s:.0f} s window)"
        )
    first = p.fit.first_limit
    text = (
        f"free-tier fit ({p.tier.name}): {_n(m.shipped_series)} shipped series; largest store "
        f"{_size(p.fit.largest)}" + (f", first limit {first}" if first else "")
    )
    if p.explosion is not None and p.exploded_fit is not None:
        first = p.exploded_fit.first_limit
        text += (
            f"; with a per-value label on {p.explosion.metric}: "
            f"{_size(p.exploded_fit.largest)}" + (f", first limit {first}" if first else "")
        )
    if p.fit.unmeasured:
        text += f" ({', '.join(p.fit.unmeasured)} not measured)"
    return text


def _json_num(value: float | None) -> float | str | None:
    if value is None:
        return None
    return "unbounded" if value == math.inf else value


def _fit_json(fit: Fit) -> dict[str, Any]:
    return {
        "largest_checkouts_per_day": _json_num(fit.largest),
        "first_limit": fit.first_limit,
        "max_checkouts_per_day_by_limit": {k: _json_num(v) for k, v in fit.max_by_limit.items()},
        "unmeasured": fit.unmeasured,
    }


def _usage_json(usage: Any) -> list[dict[str, Any]]:
    return [
        {
            "checkouts_per_day": n,
            **{
                u.limit: {"used": u.used, "allowed": u.allowed, "unit": u.unit, "share": u.share}
                for u in cells
            },
        }
        for n, cells in usage.items()
    ]


def to_json(report: BudgetReport) -> dict[str, Any]:
    m = report.measurement
    out: dict[str, Any] = {
        "target": m.target,
        "window_s": m.window_s,
        "until_unix_s": m.until_unix_s,
        "checkouts": m.checkouts,
        "series": {
            "total": m.series_total,
            "prometheus_head_series": m.head_series,
            "agreement_with_head": m.head_agreement,
            "shipped": m.shipped_series,
            "not_shipped_jobs": list(m.not_shipped),
            "by_job": m.series_by_job,
            "top_metrics": [asdict(s) for s in m.top_metrics],
            "top_labels": [{"label": k, "values": v} for k, v in m.top_labels],
        },
        "samples_per_s": m.samples_per_s,
        "samples_in_window": m.samples_in_window,
        "dpm_per_series": m.dpm_per_series,
        "scrape_interval_s": m.scrape_interval_s,
        "volumes": {
            signal: None
            if volume is None
            else {
                "items": volume.items,
                "bytes": volume.bytes,
                "bytes_per_checkout": m.per_checkout(signal),
            }
            for signal, volume in m.volumes.items()
        },
        "unmeasured": m.unmeasured,
        "notes": m.notes,
        "limits_file": str(report.limits_file),
        "ship_interval_s": report.ship_interval_s,
        "projection": None,
    }
    p = report.projection
    if p is not None:
        out["projection"] = {
            "tier": p.tier.model_dump(mode="json"),
            "rates": asdict(p.rates),
            "usage": _usage_json(p.usage),
            "fit": _fit_json(p.fit),
            "explosion": None
            if p.explosion is None or p.exploded_fit is None
            else {
                **asdict(p.explosion),
                "assumption": p.explosion.describe(),
                "usage": _usage_json(p.exploded_usage),
                "fit": _fit_json(p.exploded_fit),
            },
        }
    return out


__all__ = [
    "DEFAULT_SHIP_INTERVAL_S",
    "BudgetReport",
    "rates_of",
    "render_text",
    "run_budget",
    "summary_line",
    "to_json",
]
