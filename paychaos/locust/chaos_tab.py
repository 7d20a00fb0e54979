"""A Chaos tab in Locust's web UI: list faults, inject and revert them, see what is active.

The locustfile calls :func:`install` on Locust's ``init`` event; it does
something only where the web UI runs (the master, or a local run), never on a
worker. It adds:

- a **Chaos** tab to Locust's own UI (an extended tab, refreshed with the
  stats) listing the faults in force with their remaining TTL;
- ``/chaos``: a page with every fault, its parameters (defaults and ranges),
  an inject form per fault, and revert buttons (plain form posts);
- ``/chaos/api/active`` (JSON).

Faults act on the run's target, ``environment.paychaos_target`` (the one
``--target`` names, or the embedded stack the locustfile started), or else on
the one ``paychaos up`` recorded in ``$PAYCHAOS_STATE_DIR`` (default ``.paychaos``). Faults injected
from the UI are reverted when Locust quits; each one's TTL is held by its
target anyway.

Example::

    @events.init.add_listener
    def _(environment, **_kw):
        paychaos.locust.chaos_tab.install(environment)
"""

from __future__ import annotations

import html
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from paychaos.chaos.controller import ChaosController
from paychaos.chaos.params import parse_duration_s
from paychaos.chaos.target import FaultTarget
from paychaos.contracts.errors import PaychaosError
from paychaos.targets.resolve import plan_target

TAB_KEY = "paychaos-chaos"
STATE_DIR_ENV = "PAYCHAOS_STATE_DIR"
_COLUMNS = (
    ("id", "Fault id"),
    ("fault", "Fault"),
    ("target", "Target"),
    ("params", "Parameters"),
    ("remaining", "Remaining TTL"),
)


def default_target(environment: Any) -> FaultTarget:
    """The target of this Locust run (``--target``, or the stack it started), else the
    embedded stack ``paychaos up`` runs from ``$PAYCHAOS_STATE_DIR``."""
    session = getattr(environment, "paychaos_target", None)
    if session is not None:
        return FaultTarget(session.target, state_dir=session.state_dir)
    plan = plan_target(None, Path(os.environ.get(STATE_DIR_ENV, ".paychaos")))
    session = plan.open()
    return FaultTarget(session.target, state_dir=session.state_dir)


class ChaosPanel:
    """The controller behind the UI, created on first use (the stack may start later)."""

    def __init__(self, target: Callable[[], FaultTarget]) -> None:
        self._target = target
        self._controller: ChaosController | None = None

    @property
    def controller(self) -> ChaosController:
        if self._controller is None:
            self._controller = ChaosController(self._target())
        return self._controller

    def rows(self) -> list[dict[str, str]]:
        try:
            active = self.controller.active()
        except PaychaosError as exc:
            return [
                {
                    "id": "-",
                    "fault": f"no stack: {exc}",
                    "target": "",
                    "params": "",
                    "remaining": "",
                }
            ]
        now = time.time()
        return [
            {
                "id": e.id,
                "fault": e.fault,
                "target": e.target,
                "params": " ".join(f"{k}={v}" for k, v in e.params.items()),
                "remaining": f"{e.remaining_s(now):.0f}s",
            }
            for e in active
        ]

    def inject(self, form: dict[str, str]) -> str:
        name = form.pop("fault", "")
        duration = parse_duration_s(form.pop("for", ""), what="for")
        params = {k: v for k, v in form.items() if v != ""}
        entry = self.controller.inject(self.controller.prepare(name, params, duration))
        return f"injected {entry.id}: {name} on {entry.target} for {duration:g}s"

    def revert(self, fault_id: str) -> str:
        if fault_id == "all":
            done = self.controller.revert_all()
            return f"reverted {len(done)} fault(s)"
        entry = self.controller.revert(fault_id)
        return f"{entry.id}: {entry.ended}"

    def close(self) -> None:
        if self._controller is not None:
            self._controller.close()


def render_page(panel: ChaosPanel, message: str = "") -> str:
    """The ``/chaos`` page (plain HTML, form posts)."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>paychaos chaos</title>",
        "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}"
        ".msg{background:#eef;padding:6px}</style></head><body>",
        "<h1>Chaos</h1><p><a href='/'>back to Locust</a> · <a href='/chaos'>refresh</a></p>",
    ]
    if message:
        parts.append(f"<p class='msg'>{esc(message)}</p>")
    parts.append("<h2>In force</h2><table><tr>")
    parts += [f"<th>{esc(title)}</th>" for _, title in _COLUMNS] + ["<th></th></tr>"]
    for row in panel.rows():
        parts.append("<tr>" + "".join(f"<td>{esc(row[key])}</td>" for key, _ in _COLUMNS))
        parts.append(
            "<td><form method='post' action='/chaos/revert'>"
            f"<input type='hidden' name='id' value='{esc(row['id'])}'>"
            "<button>revert</button></form></td></tr>"
        )
    parts.append(
        "</table><form method='post' action='/chaos/revert'>"
        "<input type='hidden' name='id' value='all'><button>revert all</button></form>"
    )
    parts.append("<h2>Faults</h2><table><tr><th>Fault</th><th>Parameters</th><th></th></tr>")
    for fault in panel.controller.registry:
        fields = [
            f"<label>for <input name='for' value='60s' size='6'></label> "
            f"(max {fault.max_duration_s:.0f}s)<br>"
        ]
        for spec in fault.param_specs():
            title = f"{spec.kind}, {spec.describe_range()}: {spec.help}"
            if spec.choices:
                options = "".join(
                    f"<option{' selected' if c == spec.default else ''}>{esc(c)}</option>"
                    for c in spec.choices
                )
                control = f"<select name='{spec.name}'>{options}</select>"
            else:
                control = f"<input name='{spec.name}' value='{esc(str(spec.default))}' size='8'>"
            fields.append(f"<label title='{esc(title)}'>{esc(spec.flag)} {control}</label> ")
            fields.append(f"<small>{esc(spec.describe_range())}</small><br>")
        parts.append(
            f"<tr><td><b>{esc(fault.name)}</b><br><small>{esc(fault.description)}</small></td>"
            "<td><form method='post' action='/chaos/inject'>"
            f"<input type='hidden' name='fault' value='{esc(fault.name)}'>{''.join(fields)}"
            "<button>inject</button></form></td></tr>"
        )
    parts.append("</table></body></html>")
    return "".join(parts)


def install(
    environment: Any, *, target: Callable[[], FaultTarget] | None = None
) -> ChaosPanel | None:
    """Add the Chaos tab and ``/chaos`` to the web UI (master/local only); None elsewhere."""
    from flask import Blueprint, Response, redirect, request
    from locust.runners import WorkerRunner

    web_ui = getattr(environment, "web_ui", None)
    if web_ui is None or isinstance(environment.runner, WorkerRunner):
        return None
    panel = ChaosPanel(target or (lambda: default_target(environment)))
    auth = web_ui.auth_required_if_enabled
    blueprint = Blueprint("paychaos_chaos", __name__)

    def page() -> Any:
        return Response(render_page(panel, request.args.get("msg", "")), mimetype="text/html")

    def inject() -> Any:
        try:
            message = panel.inject({k: str(v) for k, v in request.form.items()})
        except PaychaosError as exc:
            return Response(render_page(panel, f"{type(exc).__name__}: {exc}"), status=400)
        return redirect("/chaos?msg=" + quote(message), code=303)

    def revert() -> Any:
        try:
            message = panel.revert(request.form.get("id", ""))
        except PaychaosError as exc:
            return Response(render_page(panel, f"{type(exc).__name__}: {exc}"), status=400)
        return redirect("/chaos?msg=" + quote(message), code=303)

    def active() -> Any:
        return Response(json.dumps(panel.rows()), mimetype="application/json")

    blueprint.add_url_rule("/chaos", "page", auth(page), methods=["GET"])
    blueprint.add_url_rule("/chaos/inject", "inject", auth(inject), methods=["POST"])
    blueprint.add_url_rule("/chaos/revert", "revert", auth(revert), methods=["POST"])
    blueprint.add_url_rule("/chaos/api/active", "active", auth(active), methods=["GET"])
    web_ui.app.register_blueprint(blueprint)

    # The tab in Locust's own UI: a table refreshed with /stats/requests.
    args = web_ui.template_args
    args["extended_tabs"] = [
        *args.get("extended_tabs", []),
        {"title": "Chaos (inject at /chaos)", "key": TAB_KEY},
    ]
    args["extended_tables"] = [
        *args.get("extended_tables", []),
        {"key": TAB_KEY, "structure": [{"key": k, "title": t} for k, t in _COLUMNS]},
    ]

    @web_ui.app.after_request
    def _extend_stats(response: Any) -> Any:
        if request.path != "/stats/requests" or response.json is None:
            return response
        body = dict(response.json)
        # Locust memoizes this response: replace our entry, never append to a cached body
        others = [e for e in body.get("extended_stats", []) if e.get("key") != TAB_KEY]
        body["extended_stats"] = [*others, {"key": TAB_KEY, "data": panel.rows()}]
        response.set_data(json.dumps(body))
        return response

    environment.events.quitting.add_listener(lambda **_kw: panel.close())
    return panel
