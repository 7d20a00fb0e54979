"""The OOM demonstration's outputs: a terminal table, JSON, and a self-contained HTML report.

The HTML embeds its plots (matplotlib, Agg backend) as base64 PNG: per layout,
memory per component over time as a stacked area against the cgroup limit,
with each OOM kill marked, and failed checkouts per time slice below it.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from paychaos.oom.results import SERIES_RULES, LayoutResult
from paychaos.stack.footprint import MODELS, SPAN_BYTES

MIB = 2**20
SCALE_METHOD = (
    "Real processes cannot be shrunk, so only the rest is scaled: the modelled footprints "
    "are multiplied by the scale, the real components on the instance keep their private "
    "(anonymous) resident memory R (measured once the stack is up), and the cgroup limit is "
    "R + scale x (instance memory - R). At scale 1 the limit is the instance's memory. "
    "Caveat: what the real components gain under load is not scaled, so at small scales "
    "their growth weighs more against the limit than it would on the instance."
)


def summary_table(results: Sequence[LayoutResult]) -> str:
    """The terminal summary: one row per layout, then one verdict line per layout."""
    header = (
        f"{'layout':<14} {'limit MiB':>9} {'real MiB':>8} {'peak':>5} {'OOM':>4} "
        f"{'checkouts':>9} {'failed':>12} {'gw err':>6} {'blind s':>7} {'series':>8}  victims"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        victims = ", ".join(sorted({k.component or "child" for k in r.kills})) or "-"
        lines.append(
            f"{r.key:<14} {r.limit_bytes / MIB:>9.0f} {r.real_ref_bytes / MIB:>8.0f} "
            f"{r.peak_ratio:>5.0%} {r.oom_kills:>4} {r.sent:>9} "
            f"{r.failed:>5} ({r.failed_share:>5.1%}) {r.processor_errors:>6} "
            f"{r.blind_s:>7.1f} {r.peak_head_series or '-':>8}  {victims}"
        )
    lines.append("")
    for r in results:
        lines.append(f"{r.key}: {r.verdict}")
    for r in results:
        if r.bad_deploy_t is not None:
            lines.extend(explosion_lines(r))
        if r.credit_phases:
            lines.extend(credit_lines(r))
    for r in results:
        if r.budget_summary:
            lines.append(f"{r.key}: {r.budget_summary}")
    return "\n".join(lines)


def explosion_lines(r: LayoutResult) -> list[str]:
    """The cardinality explosion, in detail: kernel kills, series, blind time, alerts."""
    lines = [f"\n{r.key} after the bad deploy at {r.bad_deploy_t:.0f}s:"]
    if r.ended_by:
        lines.append(f"  sale ended early: {r.ended_by}")
    for kill in r.kills:
        lines.append(f"  kernel OOM kill at {kill.t:.1f}s: {kill.evidence}")
    if not r.kills:
        headroom = max(0, r.limit_bytes - r.peak_usage_bytes) / MIB
        lines.append(f"  no kernel OOM kill (oom_kill stayed 0); {headroom:.0f} MiB headroom left")
    series = ", ".join(
        f"{n:,} at {t:.0f}s" for t, n in r.head_series[:: max(1, len(r.head_series) // 6)]
    )
    lines.append(f"  prometheus_tsdb_head_series: peak {r.peak_head_series:,} ({series})")
    blind = ", ".join(f"{name} {secs:.1f}s" for name, secs in r.blind_by_signal.items())
    lines.append(f"  blind: {blind}")
    p = r.pressure
    lines.append(
        f"  checkouts before the deploy: {p.get('before_sent', 0):.0f} sent, "
        f"{p.get('before_failed', 0):.0f} failed, p95 {p.get('before_p95_ms', float('nan')):.0f} ms;"
        f" after: {p.get('after_sent', 0):.0f} sent, {p.get('after_failed', 0):.0f} failed, "
        f"p95 {p.get('after_p95_ms', float('nan')):.0f} ms"
    )
    if r.heavy_queries:
        lines.append("  heavy dashboard panels (range 15 min, step 2 s) evaluated by Prometheus:")
        for q in r.heavy_queries:
            before, after = int(q["prometheus_rss_before"]), int(q["prometheus_rss_after"])
            lines.append(
                f"    {float(q['t']):5.1f}s {q['panel']!s:<38} "
                + (f"{float(q['seconds']):6.2f}s" if q["ok"] else "FAILED ")
                + f"  Prometheus {before / MIB:.0f} -> {after / MIB:.0f} MiB"
            )
    for a in r.alerts:
        if a.expected or a.name in ("PrometheusRestarted", *SERIES_RULES):
            lines.append(f"  alert {a.name}: {a.note}")
    if r.could_not_fire:
        lines.append("  alerts that could not fire while the monitoring was blind:")
        lines.extend(f"    - {line}" for line in r.could_not_fire)
    return lines


def credit_lines(r: LayoutResult) -> list[str]:
    """The noisy-neighbour run, side by side: with t3 credits and with them spent."""
    lines = [
        f"\n{r.key}: checkouts with the t3 CPU credits spent vs a full balance "
        f"({', '.join(f'{name} from {t:.0f}s' for t, name in r.credit_switches)})",
        f"  {'phase':<14} {'quota':>6} {'of time':>7} {'throttled':>9} {'sent':>6} {'failed':>6} "
        f"{'p50 ms':>7} {'p95 ms':>7}",
    ]
    for p in r.credit_phases:
        lines.append(
            f"  {p['phase']!s:<14} {float(p['quota_cores']):>6g} "
            f"{float(p.get('at_min_quota_share', 1.0)):>7.0%} {float(p['throttled_share']):>9.0%} "
            f"{float(p['sent']):>6.0f} {float(p['failed']):>6.0f} {float(p['p50_ms']):>7.0f} "
            f"{float(p['p95_ms']):>7.0f}"
        )
    return lines


def write_json(results: Sequence[LayoutResult], path: Path, *, headline: str = "") -> None:
    """One record per layout, each carrying the run's headline (scale, multiplier)."""
    records = [{"headline": headline, **asdict(r)} for r in results]
    path.write_text(json.dumps(records, indent=1, default=str))


def _plot(result: LayoutResult) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result.samples
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(9, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    if samples:
        t = [s.t for s in samples]
        names = [*result.real_on_instance, *result.modelled]
        layers = [[s.rss_bytes.get(n, 0) / MIB for s in samples] for n in names]
        other = [
            max(0.0, s.usage_bytes / MIB - sum(v.get(n, 0) for n in names) / MIB)
            for s, v in ((s, s.rss_bytes) for s in samples)
        ]
        labels = [f"{n} ({'real' if n in result.real_on_instance else 'modelled'})" for n in names]
        ax.stackplot(
            t, *layers, other, labels=[*labels, "shared pages, page cache, kernel"], alpha=0.85
        )
        ax.plot(t, [s.limit_bytes / MIB for s in samples], "k--", lw=1.5, label="cgroup limit")
        ax.plot(t, [s.usage_bytes / MIB for s in samples], "k-", lw=0.8, label="cgroup usage")
        for kill in result.kills:
            ax.axvline(kill.t, color="red", lw=1.2)
            ax.annotate(
                f"OOM: {kill.component or 'child'}",
                (kill.t, max(s.limit_bytes for s in samples) / MIB),
                rotation=90, va="top", ha="right", fontsize=7, color="red",
            )  # fmt: skip
        ax.legend(fontsize=6, loc="upper left", ncol=2)
    ax.set_ylabel("MiB")
    ax.set_title(result.title, fontsize=9)
    for s in result.slices:
        ax2.bar(s.t_start, s.failed, width=max(0.1, s.t_end - s.t_start), align="edge", color="red")
        ax2.bar(
            s.t_start, s.succeeded, bottom=s.failed, width=max(0.1, s.t_end - s.t_start),
            align="edge", color="tab:green", alpha=0.5,
        )  # fmt: skip
    ax2.set_ylabel("checkouts\n(red: failed)", fontsize=7)
    if result.head_series:
        ax3 = ax2.twinx()
        ax3.plot([t for t, _ in result.head_series], [n for _, n in result.head_series], "b-", lw=1)
        ax3.set_ylabel("head series", fontsize=7, color="b")
    if result.bad_deploy_t is not None:
        ax.axvline(result.bad_deploy_t, color="purple", lw=1.2, ls=":")
        ax.annotate("bad deploy", (result.bad_deploy_t, 0), rotation=90, fontsize=7, color="purple")
    ax2.set_xlabel("seconds since the flash sale began")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _esc(text: object) -> str:
    return html.escape(str(text))


def _model_rows() -> str:
    rows = []
    for m in MODELS.values():
        cites = "<br>".join(_esc(s) for s in m.sources) or "-"
        assumed = "<br>".join(_esc(a) for a in m.assumptions) or "-"
        rows.append(
            f"<tr><td>{_esc(m.component)}</td><td>{_esc(m.stands_for)}</td>"
            f"<td>{_esc(m.formula())}</td><td>{cites}</td><td>{assumed}</td></tr>"
        )
    return "\n".join(rows)


def render_html(
    results: Sequence[LayoutResult], *, command: str, notes: Sequence[str], headline: str = ""
) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>paychaos oom-demo</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px}"
        ".bad{color:#b00}.ok{color:#070}pre{background:#f6f6f6;padding:6px}</style></head><body>",
        "<h1>The t3.medium OOM demonstration</h1>",
        f"<p><b>{_esc(headline)}</b></p>" if headline else "",
        f"<p>Command: <code>{_esc(command)}</code></p>",
        f"<pre>{_esc(summary_table(results))}</pre>",
    ]
    for note in notes:
        parts.append(f"<p><b>{_esc(note)}</b></p>")
    parts.append(f"<h2>Method</h2><p>{_esc(SCALE_METHOD)}</p>")
    parts.append(
        "<p>Kills are read from the kernel: the cgroup's own <code>oom_kill</code> counter "
        "(v1 <code>memory.oom_control</code>, v2 <code>memory.events</code>); each is named "
        "by the supervisor's record of a process killed by SIGKILL at the same time.</p>"
    )
    parts.append(
        "<h2>Footprint model (full scale)</h2><table><tr><th>component</th><th>stands for</th>"
        f"<th>model</th><th>published figure</th><th>assumptions</th></tr>{_model_rows()}</table>"
        f"<p>Span size {SPAN_BYTES} bytes (Tempo's documented typical span).</p>"
    )
    for r in results:
        css = "bad" if r.oom_kills else "ok"
        parts.append(f"<h2>{_esc(r.title)}</h2><p class='{css}'><b>{_esc(r.verdict)}</b></p>")
        parts.append(
            "<ul>"
            f"<li>cgroup {_esc(r.cgroup)} (v{r.cgroup_version}); limit {r.limit_bytes / MIB:.0f} MiB"
            f" = real {r.real_ref_bytes / MIB:.0f} MiB + {r.scale:g} x "
            f"({r.full_limit_bytes / MIB:.0f} - {r.real_ref_bytes / MIB:.0f}) MiB; CPU quota "
            f"{'applied' if r.cpu_quota_applied else 'not available'}</li>"
            f"<li>real on the instance: {_esc(', '.join(r.real_on_instance))}</li>"
            f"<li>modelled on the instance: {_esc(', '.join(r.modelled))}</li>"
            f"<li>outside the instance: {_esc(', '.join(r.off_instance))}</li>"
            f"<li>checkouts {r.sent}, failed {r.failed} ({r.failed_share:.1%}); monitoring blind "
            f"{r.blind_s:.1f}s (Prometheus down {r.prometheus_down_s:.1f}s)</li>"
            f"<li>restarts: {_esc({k: v for k, v in r.restarts.items() if v} or 'none')}</li>"
            + ("<li class='bad'>interrupted</li>" if r.interrupted else "")
            + "</ul>"
        )
        if r.bad_deploy_t is not None:
            parts.append(
                "<h3>Cardinality explosion</h3><pre>"
                + _esc("\n".join(explosion_lines(r)[1:]))
                + "</pre>"
            )
        if r.credit_phases:
            parts.append(
                "<h3>Noisy neighbour: t3 CPU credits</h3><pre>"
                + _esc("\n".join(credit_lines(r)[1:]))
                + "</pre>"
            )
        if r.kills:
            parts.append("<h3>OOM kills</h3><ul>")
            parts.extend(f"<li>{k.t:.1f}s: {_esc(k.evidence)}</li>" for k in r.kills)
            parts.append("</ul>")
        parts.append("<h3>Alerts</h3><table><tr><th>alert</th><th>expected</th><th>fired</th>"
                     "<th>note</th></tr>")  # fmt: skip
        for a in r.alerts:
            parts.append(
                f"<tr><td>{_esc(a.name)}</td><td>{'yes' if a.expected else 'no'}</td>"
                f"<td>{'yes' if a.fired else 'no'}</td><td>{_esc(a.note)}</td></tr>"
            )
        parts.append("</table>")
        parts.append(f"<img alt='memory of {_esc(r.key)}' src='data:image/png;base64,{_plot(r)}'>")
        if r.budget_text or r.budget_summary:
            parts.append(
                "<h3>Free-tier budget (paychaos budget over this run)</h3>"
                "<p>In this layout Prometheus and the collector stand for Grafana Cloud: what "
                "they received is what the store would send it.</p>"
                f"<pre>{_esc(r.budget_text or r.budget_summary)}</pre>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)
