"""Business stats beside Locust's request stats: payments per method and outcome.

Each Locust process counts its own checkouts in :class:`BusinessStats`;
workers send their cumulative counts with every stats report
(``report_to_master``) and the master keeps the latest per worker
(:class:`ClusterStats`), so the sum is right however many reports were lost
or repeated. The web UI gets a *Payments* tab (Locust's ``extended_tabs`` /
``extended_tables`` / ``extended_stats``) and the console a table at the end::

    stats = BusinessStats()
    stats.record("visa", "succeeded", 1900)
    print(render_table(stats.rows()))
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from paychaos.traffic.open_model import OpenModelStats

REPORT_KEY = "paychaos_traffic"
TAB_KEY = "payments"


class BusinessStats:
    """Cumulative checkout counts and amounts per (method, outcome) of one process."""

    def __init__(self) -> None:
        self.count: Counter[tuple[str, str]] = Counter()
        self.amount_cents: Counter[tuple[str, str]] = Counter()
        self.retries = 0
        self.abandoned = 0
        self.js_errors = 0

    def record(self, method: str, outcome: str, amount_cents: int, attempts: int = 1) -> None:
        self.count[(method, outcome)] += 1
        self.amount_cents[(method, outcome)] += amount_cents
        self.retries += max(0, attempts - 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": [[m, o, n, self.amount_cents[(m, o)]] for (m, o), n in self.count.items()],
            "retries": self.retries,
            "abandoned": self.abandoned,
            "js_errors": self.js_errors,
        }

    def merge(self, data: Mapping[str, Any]) -> None:
        for method, outcome, n, cents in data.get("rows", []):
            self.count[(method, outcome)] += int(n)
            self.amount_cents[(method, outcome)] += int(cents)
        self.retries += int(data.get("retries", 0))
        self.abandoned += int(data.get("abandoned", 0))
        self.js_errors += int(data.get("js_errors", 0))

    def rows(self) -> list[dict[str, Any]]:
        """One row per (method, outcome), for the UI table and the console."""
        total = sum(self.count.values()) or 1
        return [
            {
                "method": method,
                "outcome": outcome,
                "payments": n,
                "share": f"{100 * n / total:.1f}%",
                "amount": f"{self.amount_cents[(method, outcome)] / 100:,.2f}",
            }
            for (method, outcome), n in sorted(self.count.items())
        ]


class ClusterStats:
    """What the master (or a local runner) shows: its own counts plus every worker's latest."""

    def __init__(self, local: BusinessStats) -> None:
        self.local = local
        self.local_open: OpenModelStats | None = None
        self._workers: dict[str, dict[str, Any]] = {}
        self.live: Callable[[], BusinessStats | None] | None = None
        """The shoppers of this very process, counted while they run (a local run):
        the tab fills during the run, not only at its end."""

    def on_worker_report(self, client_id: str, data: Mapping[str, Any]) -> None:
        report = data.get(REPORT_KEY)
        if isinstance(report, dict):
            self._workers[client_id] = report

    def business(self) -> BusinessStats:
        total = BusinessStats()
        total.merge(self.local.to_json())
        running = self.live() if self.live is not None else None
        if running is not None:
            total.merge(running.to_json())
        for report in self._workers.values():
            total.merge(report.get("business", {}))
        return total

    def open_model(self) -> OpenModelStats | None:
        stats = OpenModelStats()
        seen = False
        if self.local_open is not None:
            stats.merge(vars(self.local_open))
            seen = True
        for report in self._workers.values():
            if report.get("open"):
                stats.merge(report["open"])
                seen = True
        return stats if seen else None


def render_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table of :meth:`BusinessStats.rows` for the console."""
    header = f"{'method':<8} {'outcome':<10} {'payments':>9} {'share':>7} {'amount':>14}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['method']:<8} {r['outcome']:<10} {r['payments']:>9} {r['share']:>7} {r['amount']:>14}"
        )
    return "\n".join(lines)


def web_base_path(web_ui: Any) -> str:
    """The path Locust serves its web UI under (``--web-base-path``, e.g. ``/locust``;
    ``""`` by default), without a trailing slash: the routes paychaos adds go under it.
    Read from Locust's own blueprint (its ``url_prefix``), else from the options."""
    blueprint = web_ui.app.blueprints.get("locust")
    prefix = getattr(blueprint, "url_prefix", None)
    if prefix is None:
        options = getattr(web_ui.environment, "parsed_options", None)
        prefix = getattr(options, "web_base_path", "")
    return str(prefix or "").rstrip("/")


def install_web_ui(web_ui: Any, cluster: ClusterStats) -> None:
    """Add the *Payments* tab to Locust's web UI and a JSON route ``/paychaos/payments``
    (both under Locust's ``--web-base-path``, if any)."""
    import orjson
    from flask import Response, request

    base = web_base_path(web_ui)
    args = web_ui.template_args
    args.setdefault("extended_tabs", []).append({"title": "Payments", "key": TAB_KEY})
    args.setdefault("extended_tables", []).append(
        {
            "key": TAB_KEY,
            "structure": [
                {"key": "method", "title": "Method"},
                {"key": "outcome", "title": "Outcome"},
                {"key": "payments", "title": "Payments"},
                {"key": "share", "title": "Share"},
                {"key": "amount", "title": "Amount"},
            ],
        }
    )

    def payload() -> dict[str, Any]:
        open_stats = cluster.open_model()
        business = cluster.business()
        return {
            "rows": business.rows(),
            "retries": business.retries,
            "abandoned": business.abandoned,
            "js_errors": business.js_errors,
            "open_model": None
            if open_stats is None
            else {
                "target_per_s": round(open_stats.target_per_s, 2),
                "achieved_per_s": round(open_stats.achieved_per_s, 2),
                "late": open_stats.late,
                "skipped": open_stats.skipped,
            },
        }

    @web_ui.app.after_request
    def _extend_stats(response: Any) -> Any:
        if request.path != base + "/stats/requests" or not response.is_json:
            return response
        body = response.get_json()
        # Locust memoizes this response: replace our entry, never append to a cached body
        others = [e for e in body.get("extended_stats", []) if e.get("key") != TAB_KEY]
        body["extended_stats"] = [*others, {"key": TAB_KEY, "data": payload()["rows"]}]
        response.set_data(orjson.dumps(body))
        return response

    @web_ui.app.route(base + "/paychaos/payments")
    def _payments() -> Any:
        return Response(orjson.dumps(payload()), mimetype="application/json")
