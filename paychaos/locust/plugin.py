"""Wires the traffic into Locust's events; the locustfile calls :func:`install` once.

- ``init_command_line_parser``: the traffic flags (:mod:`paychaos.traffic.options`);
- ``init``: validate the flags (one-line error, exit 2); with ``--target``,
  drive that target (its checkout URL, collector and gateway); with neither
  ``--target`` nor ``--host``, start the embedded stack (master or single
  process only). Either way ``environment.paychaos_target`` is the
  :class:`~paychaos.targets.resolve.TargetSession` the Chaos tab acts on;
  install the load shape, the business stats (web UI *Payments* tab) and the
  Chaos tab of ``paychaos.locust.chaos_tab`` when that module exists;
- ``report_to_master`` / ``worker_report``: cumulative business and open-model
  counts from every worker;
- ``test_stop``: flush the ledger, RUM and spans; ``quitting``: final tables,
  optional reconciliation, thresholds (exit code), revert the Chaos tab's
  faults, then stop the stack.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from locust.runners import STATE_INIT, STATE_STOPPED, MasterRunner, WorkerRunner

from paychaos.contracts.errors import InvalidInput, InvalidTarget, PaychaosError
from paychaos.contracts.target import Checkout
from paychaos.targets.resolve import TargetSession, plan_target
from paychaos.traffic import options as opts
from paychaos.traffic.adapter import CheckoutClient
from paychaos.traffic.business import (
    REPORT_KEY,
    BusinessStats,
    ClusterStats,
    install_web_ui,
    render_table,
)
from paychaos.traffic.ledger import ledger_files
from paychaos.traffic.options import TrafficSettings, settings_from_options
from paychaos.traffic.profiles import make_profile
from paychaos.traffic.runtime import checkout_name, checkout_of, existing_runtime
from paychaos.traffic.shapes import ShapedLoad
from paychaos.traffic.stack_boot import StackBoot
from paychaos.traffic.thresholds import EXIT_THRESHOLD_FAILED, Observed, evaluate

log = logging.getLogger("paychaos.traffic")
CHECKOUT_PATH = "/api/checkout"
FLUSHED_MSG = "paychaos_flushed"


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    sys.exit(code)


def _interrupt_in_the_main_greenlet(signum: int, when: Callable[[], bool] | None = None) -> None:
    """Deliver ``signum`` as a KeyboardInterrupt to Locust's main greenlet, where Locust
    catches it and shuts down with its final report.

    Python raises the KeyboardInterrupt of Ctrl-C in whatever greenlet runs when the
    signal comes, most often a shopper's (the main greenlet only waits): gevent then
    printed that shopper's traceback ("failed with KeyboardInterrupt") before passing the
    interrupt on. Through gevent's own signal watcher the hub takes the signal between
    greenlets and throws it into the main one; ``when`` (a callable), if given, decides
    at each signal whether to."""
    import gevent

    main = gevent.get_hub().parent

    def interrupt() -> None:
        if when is None or when():
            main.throw(KeyboardInterrupt)

    gevent.signal_handler(signum, interrupt)


def _served_page(state_dir: Path) -> str:
    """The checkout page a running embedded stack serves (``up --webapp``), or ""."""
    from paychaos.stack.state import read_state

    state = read_state(state_dir)
    page = state.components.get("webapp") if state is not None else None
    return f"http://127.0.0.1:{page.port}" if page is not None and page.port else ""


def _browser_users(environment: Any, settings: TrafficSettings) -> None:
    """``--browser-users N``: exactly N users drive the page in Chromium (Locust's
    ``fixed_count``); without it the browser shoppers' class is not run at all."""
    browsers = [u for u in environment.user_classes if getattr(u, "paychaos_browser", False)]
    if settings.browser_users == 0:
        environment.user_classes = [u for u in environment.user_classes if u not in browsers]
        return
    if not browsers:
        _fail("--browser-users: this locustfile has no browser shoppers (BrowserShopper)", 2)
        return
    for user_class in browsers:
        user_class.fixed_count = settings.browser_users


class TrafficPlugin:
    """Holds what the master/local process owns: the stack and the cluster stats."""

    def __init__(self) -> None:
        self.boot: StackBoot | None = None
        self.cluster = ClusterStats(BusinessStats())
        self.settings: TrafficSettings | None = None
        self.flushed: set[str] = set()
        self.chaos_panel: Any = None

    # -- init -------------------------------------------------------------------------

    def on_init(self, environment: Any, runner: Any, web_ui: Any = None, **_: Any) -> None:
        _interrupt_in_the_main_greenlet(signal.SIGINT)
        try:
            self.settings = settings = settings_from_options(environment.parsed_options)
        except InvalidInput as exc:
            _fail(str(exc), 2)
            return
        _browser_users(environment, settings)
        if isinstance(runner, WorkerRunner):
            environment.events.report_to_master.add_listener(self._report_to_master(environment))
            environment.events.test_stop.add_listener(self._worker_test_stop(environment))
            return
        options = environment.parsed_options
        options.paychaos_run_id = time.strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(2)
        target_ref = getattr(options, "target", "") or ""
        if target_ref:
            self._use_target(environment, target_ref)
        elif not environment.host and not any(
            getattr(u, "host", None) for u in environment.user_classes
        ):
            self._start_stack(environment, settings)
        if settings.webapp_url:
            options.paychaos_webapp_url = settings.webapp_url
        if settings.browser_users and not getattr(options, "paychaos_webapp_url", ""):
            _fail(
                "--browser-users: no checkout page to open; give --webapp-url (the embedded "
                "stack Locust starts when there is no --host or --target serves one)",
                2,
            )
            return
        environment.events.worker_report.add_listener(self.cluster.on_worker_report)
        self.cluster.live = lambda: rt.business if (rt := existing_runtime(environment)) else None
        if isinstance(runner, MasterRunner):
            runner.register_message(
                FLUSHED_MSG, lambda msg, **_: self.flushed.add(str(msg.node_id))
            )
        else:
            environment.events.test_stop.add_listener(lambda **_: self._flush_local(environment))
        self._install_shape(environment, runner, settings)
        if web_ui is not None:
            install_web_ui(web_ui, self.cluster)
        self.chaos_panel = _install_chaos_ui(environment)

    def _start_stack(self, environment: Any, settings: TrafficSettings) -> None:
        self.boot = StackBoot(
            Path(settings.stack_dir),
            gateway_latency_scale=settings.stack_gateway_latency_scale,
            webapp=settings.browser_users > 0,
        )
        try:
            self.boot.start()
        except PaychaosError as exc:
            self.boot = None
            _fail(f"the embedded stack did not start: {exc}", 1)
            return
        assert self.boot.stack is not None
        stack = self.boot.stack
        self._point_at(environment, TargetSession(stack.target(), stack.cfg.state_dir))
        if "webapp" in stack.urls:
            environment.parsed_options.paychaos_webapp_url = stack.urls["webapp"]
        if environment.parsed_options.reconcile is None:
            environment.parsed_options.reconcile = True

    def _use_target(self, environment: Any, ref: str) -> None:
        """``--target``: a built-in stack that runs, or a target file."""
        state_dir = Path(os.environ.get("PAYCHAOS_STATE_DIR", ".paychaos"))
        try:
            session = plan_target(ref, state_dir).open()
        except PaychaosError as exc:
            _fail(f"--target {ref}: {exc}", getattr(exc, "exit_code", 2))
            return
        self._point_at(environment, session)
        if ref == "embedded":  # `paychaos up --webapp`: the browser users open its page
            page = _served_page(state_dir)
            if page:
                environment.parsed_options.paychaos_webapp_url = page

    def _point_at(self, environment: Any, session: TargetSession) -> None:
        """Send the shoppers, their RUM and the reconciliation to ``session``'s target."""
        target = session.target
        try:  # a secret the adapter's headers need, missing here: say so before any load
            CheckoutClient(target.checkout)
        except InvalidTarget as exc:
            _fail(f"target {target.name}: {exc}", 2)
            return
        environment.paychaos_target = session  # what paychaos.locust.chaos_tab acts on
        environment.host = target.checkout.url
        options = environment.parsed_options
        options.host = target.checkout.url
        # The shoppers (here or on the workers) call the API through the target's adapter;
        # its secrets travel as references ({env: NAME}) and are resolved where they run.
        options.paychaos_checkout = target.checkout.model_dump_json()
        rum = target.signals.rum
        if not options.collector_url and rum is not None and rum.kind == "collector":
            options.collector_url = rum.url
        gateway = target.actuators.gateway_admin
        if not options.gateway_url and gateway is not None:
            options.gateway_url = gateway.url

    def _install_shape(self, environment: Any, runner: Any, settings: TrafficSettings) -> None:
        options = environment.parsed_options
        if settings.open_model:
            slots = settings.open_slots()  # the arrival rate follows the shape, the slots stay
            shape = ShapedLoad(lambda t: 1.0, slots, float(slots))
        elif settings.shape != "none":
            peak = int(options.num_users or 1)
            shape = ShapedLoad(
                make_profile(settings.shape, settings.shape_params),
                peak,
                float(options.spawn_rate or peak),
            )
        else:
            return
        shape.runner = runner
        environment.shape_class = shape
        if getattr(options, "headless", False) and not getattr(options, "worker", False):
            # A headless Locust with a shape waits for the shape to end *before* it
            # installs its SIGTERM handler (locust/main.py, 2.47): a SIGTERM then killed
            # the process with no final report and no stack stopped (exit -15). Until
            # the shape ends (and Locust's own handler takes over), SIGTERM does what
            # Ctrl-C does.
            def shaping() -> bool:
                shaper = getattr(runner, "shape_greenlet", None)
                return shaper is None or not shaper.dead

            _interrupt_in_the_main_greenlet(signal.SIGTERM, when=shaping)

    # -- workers ----------------------------------------------------------------------

    def _report_to_master(self, environment: Any) -> Any:
        def listener(client_id: str, data: dict[str, Any], **_: Any) -> None:
            runtime = existing_runtime(environment)
            if runtime is not None:
                data[REPORT_KEY] = runtime.report()

        return listener

    def _worker_test_stop(self, environment: Any) -> Any:
        def listener(**_: Any) -> None:
            runtime = existing_runtime(environment)
            if runtime is not None:
                runtime.flush()
            environment.runner.send_message(FLUSHED_MSG, None)

        return listener

    def _flush_local(self, environment: Any) -> None:
        runtime = existing_runtime(environment)
        if runtime is not None:
            runtime.flush()

    # -- quitting ---------------------------------------------------------------------

    def on_quitting(self, environment: Any, **_: Any) -> None:
        runtime = existing_runtime(environment)
        runner = environment.runner
        try:
            owner = not isinstance(runner, WorkerRunner) and self.settings is not None
            # SIGTERM and errors quit without stopping the users first: stop them before
            # the money is counted and the stack goes away under them.
            if owner and runner is not None and runner.state not in (STATE_INIT, STATE_STOPPED):
                runner.stop()
            if runtime is not None:
                runtime.close()
            if not owner or self.settings is None:
                return
            if isinstance(runner, MasterRunner):
                self._wait_for_workers(environment)
            elif runtime is not None:
                self.cluster.live = None  # counted once: merged into the final totals now
                self.cluster.local.merge(runtime.business.to_json())
                if runtime.schedule is not None:
                    from paychaos.traffic.open_model import OpenModelStats

                    self.cluster.local_open = OpenModelStats()
                    self.cluster.local_open.merge(runtime.schedule.snapshot())
            self._final_report(environment, self.settings)
        finally:
            self._close_chaos_panel()
            environment.paychaos_target = None
            if self.boot is not None:
                self.boot.stop()
                self.boot = None

    def _close_chaos_panel(self) -> None:
        """Revert the Chaos tab's faults while their stack still runs (before it stops)."""
        panel, self.chaos_panel = self.chaos_panel, None
        if panel is None:
            return
        try:
            panel.close()
        except Exception as exc:  # a plugin must not hide the run's result; say why
            log.warning("reverting the Chaos tab's faults failed: %s", exc)

    def _wait_for_workers(self, environment: Any, timeout_s: float = 15.0) -> None:
        import gevent

        expected = len(environment.runner.clients)
        deadline = time.monotonic() + timeout_s
        while len(self.flushed) < expected and time.monotonic() < deadline:
            gevent.sleep(0.2)

    def _final_report(self, environment: Any, settings: TrafficSettings) -> None:
        lines = [
            "",
            "Payments (paychaos business stats)",
            render_table(self.cluster.business().rows()),
        ]
        business = self.cluster.business()
        lines.append(
            f"retries {business.retries}, abandoned carts {business.abandoned}, "
            f"JS errors {business.js_errors}"
        )
        open_stats = self.cluster.open_model()
        summary: dict[str, Any] = {"business": business.rows()}
        if open_stats is not None:
            lines.append(
                f"open model: target {open_stats.target_per_s:.2f}/s, achieved "
                f"{open_stats.achieved_per_s:.2f}/s, late {open_stats.late}, skipped {open_stats.skipped}"
            )
            summary["open_model"] = {
                "target_per_s": open_stats.target_per_s,
                "achieved_per_s": open_stats.achieved_per_s,
                "scheduled": open_stats.scheduled,
                "started": open_stats.started,
                "late": open_stats.late,
                "skipped": open_stats.skipped,
            }
        options = environment.parsed_options
        checkout = self._checkout(environment)
        if options.reconcile and checkout is not None:
            summary["reconcile"] = self._reconcile(environment, checkout, lines)
        name, method = CHECKOUT_PATH, "POST"
        if checkout is not None:
            name, method = checkout_name(checkout), checkout.adapter.method
        entry = environment.stats.get(name, method)
        observed = Observed(
            requests=entry.num_requests,
            error_ratio=entry.fail_ratio,
            p95_ms=float(entry.get_response_time_percentile(0.95) or 0),
            rate_per_s=float(entry.total_rps),
        )
        failures = evaluate(observed, settings)
        summary["thresholds"] = {"observed": vars(observed), "failed": failures}
        if failures:
            environment.process_exit_code = EXIT_THRESHOLD_FAILED
            lines.extend(f"THRESHOLD FAILED {f}" for f in failures)
        elif any(
            v is not None
            for v in (settings.max_error_ratio, settings.max_p95_ms, settings.min_rate_per_s)
        ):
            environment.process_exit_code = 0
            lines.append("thresholds: all held")
        if summary.get("reconcile", {}).get("ok") is False:
            environment.process_exit_code = EXIT_THRESHOLD_FAILED
            lines.append("THRESHOLD FAILED reconcile: money lost or charged twice")
        print("\n".join(lines), flush=True)
        out = Path(settings.ledger_dir) / f"summary-{options.paychaos_run_id}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary, indent=2, default=str))

    @staticmethod
    def _checkout(environment: Any) -> Checkout | None:
        """The checkout API the shoppers drove (the target's, or paychaos' own at --host)."""
        try:
            return checkout_of(environment)
        except (InvalidInput, ValueError):
            return None

    def _reconcile(self, environment: Any, checkout: Checkout, lines: list[str]) -> dict[str, Any]:
        """The money check: read every payment back through the adapter (and count double
        charges in the gateway's ledger where the target has one)."""
        from paychaos.traffic.reconcile import reconcile

        options = environment.parsed_options
        paths = ledger_files(options.ledger_dir, options.paychaos_run_id)
        try:
            client = CheckoutClient(checkout)
            report = reconcile(paths, client, options.gateway_url or None, settle_timeout_s=20.0)
        except PaychaosError as exc:
            lines.append(f"reconcile: could not run: {exc}")
            return {"error": str(exc)}
        lines.append(f"reconcile: {report.summary()}")
        result = report.to_json()
        if checkout.adapter.builtin:
            result["api_payments_total"] = _api_payments_total(checkout.url)
        return result


def _api_payments_total(api_url: str) -> dict[str, float]:
    """``shop_payments_total`` from the API's ``/metrics`` (``method/status`` → value)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "shop_payments":
            for sample in family.samples:
                if sample.name == "shop_payments_total":
                    out[f"{sample.labels['method']}/{sample.labels['status']}"] = sample.value
    return out


def _install_chaos_ui(environment: Any) -> Any:
    """The Chaos tab's panel (``paychaos.locust.chaos_tab.install``), or None where there is none."""
    try:
        if importlib.util.find_spec("paychaos.locust.chaos_tab") is None:
            return None
        return importlib.import_module("paychaos.locust.chaos_tab").install(environment)
    except Exception as exc:  # a plugin must not break the run; say why
        log.warning("the Chaos tab could not be installed: %s", exc)
        return None


_INSTALLED = "_paychaos_traffic_plugin"


def install(events: Any) -> TrafficPlugin:
    """Register the traffic listeners on Locust's ``events``; returns the plugin.

    Once per ``events``: a locustfile run as a script (``python locustfiles/checkout.py``)
    is imported twice, as ``__main__`` and again by Locust, and one option registered
    twice would stop Locust ("conflicting option string")."""
    existing = getattr(events, _INSTALLED, None)
    if isinstance(existing, TrafficPlugin):
        return existing
    plugin = TrafficPlugin()
    events.init_command_line_parser.add_listener(_add_arguments)
    events.init.add_listener(plugin.on_init)
    events.quitting.add_listener(plugin.on_quitting)
    setattr(events, _INSTALLED, plugin)
    return plugin


def _add_arguments(parser: Any, **_: Any) -> None:
    opts.add_arguments(parser)
    group = parser
    group.add_argument(
        "--gateway-url",
        default="",
        help="gateway ledger for --reconcile (set automatically for the embedded stack)",
    )
    group.add_argument(
        "--reconcile",
        action="store_true",
        default=None,
        help="at the end, read every payment of the client ledger back through the "
        "target's checkout adapter (and count double charges in the gateway ledger where "
        "there is one); default on with the embedded stack",
    )
    group.add_argument(
        "--paychaos-checkout",
        default="",
        include_in_web_ui=False,
        help="(internal) the target's checkout API and adapter as JSON, set by the master",
    )
    group.add_argument(
        "--paychaos-run-id",
        default="",
        include_in_web_ui=False,
        help="(internal) id of the run, set by the master",
    )
