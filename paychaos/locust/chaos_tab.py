"""A Chaos tab in Locust's web UI: list faults, inject and revert them, see what is active.

The locustfile calls :func:`install` on Locust's ``init`` event; it does
something only where the web UI runs (the master, or a local run), never on a
worker. It adds:

- a **Chaos** tab to Locust's own UI: Locust's table of the faults in force
  with their remaining TTL (refreshed with the stats) and, above it, the
  controls (``chaos_tab.js``, drawn in the colours and type of Locust's own
  theme): a fault, its parameters (defaults and ranges), its TTL, *Inject*;
  a fault in force, *Revert*, *Revert all*; a message line that says what
  happened or, on bad input, what is wrong;
- a JSON API the tab uses (scripts may too): ``GET /chaos/api/faults``,
  ``GET /chaos/api/active``, ``POST /chaos/api/inject`` (``fault``, ``for``,
  parameters; a form or JSON) and ``POST /chaos/api/revert`` (``id``, or
  ``all``): ``{"message": ...}``, or 400 ``{"error": ...}``; ``/chaos`` leads
  to the tab.

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

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paychaos.chaos.controller import ChaosController
from paychaos.chaos.params import parse_duration_s
from paychaos.chaos.target import FaultTarget
from paychaos.contracts.errors import PaychaosError
from paychaos.targets.resolve import plan_target
from paychaos.traffic.business import web_base_path

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


def catalog(panel: ChaosPanel) -> list[dict[str, Any]]:
    """Every fault the tab's form offers: name, description, longest TTL, parameters."""
    return [
        {
            "name": fault.name,
            "description": fault.description,
            "max_duration_s": fault.max_duration_s,
            "params": [
                {
                    "name": spec.name,
                    "kind": spec.kind,
                    "default": str(spec.default),
                    "choices": list(spec.choices),
                    "range": spec.describe_range(),
                    "help": spec.help,
                }
                for spec in fault.param_specs()
            ],
        }
        for fault in panel.controller.registry
    ]


SCRIPT = Path(__file__).with_name("chaos_tab.js")
SCRIPT_URL = "/paychaos/chaos-tab.js"


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
    # Locust serves its UI under --web-base-path (e.g. /locust): so do the tab's routes,
    # and chaos_tab.js finds them beside the address it was loaded from.
    base = web_base_path(web_ui)
    blueprint = Blueprint("paychaos_chaos", __name__, url_prefix=base or None)

    def answer(action: Callable[[], str]) -> Any:
        try:
            return Response(json.dumps({"message": action()}), mimetype="application/json")
        except PaychaosError as exc:  # bad input or a fault that cannot act: say which
            body = json.dumps({"error": str(exc)})
            return Response(body, status=400, mimetype="application/json")

    def form() -> dict[str, str]:
        data = request.get_json(silent=True) if request.is_json else None
        source = data if isinstance(data, dict) else request.form
        return {str(k): str(v) for k, v in source.items()}

    def inject() -> Any:
        return answer(lambda: panel.inject(form()))

    def revert() -> Any:
        return answer(lambda: panel.revert(form().get("id", "")))

    def active() -> Any:
        return Response(json.dumps(panel.rows()), mimetype="application/json")

    def faults() -> Any:
        try:
            return Response(json.dumps(catalog(panel)), mimetype="application/json")
        except PaychaosError as exc:
            return Response(
                json.dumps({"error": str(exc)}), status=503, mimetype="application/json"
            )

    def script() -> Any:
        return Response(SCRIPT.read_text(), mimetype="application/javascript")

    def tab() -> Any:  # the old address: the tab now holds the controls
        return redirect(f"{base}/?tab={TAB_KEY}", code=302)

    blueprint.add_url_rule("/chaos", "tab", auth(tab), methods=["GET"])
    blueprint.add_url_rule("/chaos/api/faults", "faults", auth(faults), methods=["GET"])
    blueprint.add_url_rule("/chaos/api/inject", "inject", auth(inject), methods=["POST"])
    blueprint.add_url_rule("/chaos/api/revert", "revert", auth(revert), methods=["POST"])
    blueprint.add_url_rule("/chaos/api/active", "active", auth(active), methods=["GET"])
    blueprint.add_url_rule(SCRIPT_URL, "script", script, methods=["GET"])
    web_ui.app.register_blueprint(blueprint)

    # The tab in Locust's own UI: its table of the faults in force, refreshed with
    # /stats/requests, and above it the inject/revert controls chaos_tab.js draws in
    # Locust's look (Locust's index page gets the script).
    args = web_ui.template_args
    args["extended_tabs"] = [*args.get("extended_tabs", []), {"title": "Chaos", "key": TAB_KEY}]
    args["extended_tables"] = [
        *args.get("extended_tables", []),
        {"key": TAB_KEY, "structure": [{"key": k, "title": t} for k, t in _COLUMNS]},
    ]

    @web_ui.app.after_request
    def _extend(response: Any) -> Any:
        if (
            request.path == base + "/"
            and response.mimetype == "text/html"
            and response.status_code == 200
        ):
            page = response.get_data(as_text=True)
            tag = f'<script src="{base}{SCRIPT_URL}" defer></script>'
            if tag not in page:
                response.set_data(page.replace("</body>", tag + "</body>", 1))
            return response
        if request.path != base + "/stats/requests" or response.json is None:
            return response
        body = dict(response.json)
        # Locust memoizes this response: replace our entry, never append to a cached body
        others = [e for e in body.get("extended_stats", []) if e.get("key") != TAB_KEY]
        body["extended_stats"] = [*others, {"key": TAB_KEY, "data": panel.rows()}]
        response.set_data(json.dumps(body))
        return response

    environment.events.quitting.add_listener(lambda **_kw: panel.close())
    return panel
