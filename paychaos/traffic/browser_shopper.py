"""Real-browser shoppers: a Locust user that drives the checkout page in headless Chromium.

Each :class:`BrowserShopper` owns ONE Debian Chromium (:mod:`paychaos.traffic.chromium`),
started on the user's start and closed on its stop (over DevTools, then by its process
group, with its own ``TMPDIR`` and profile removed); a SIGKILLed Locust takes its
browsers with it (``PR_SET_PDEATHSIG``), though their scratch directories stay. A visit: open the page
(``stack/webapp``) with a method drawn from ``--method-mix`` (and, at
``--js-error-rate``, the page's ``force_error`` flag), read the cart a moment, click
*Pay* with a real mouse event, wait for the outcome the page shows, hand the
browser's batched spans to Faro (``window.paychaosFlush``), leave the page (the SDK
reports LCP, CLS and INP when it is hidden), think. Everything the collector gets
from these users comes from the real Faro web SDK: ``click_payment_button``, errors
with their context, web vitals, the browser's ``checkout`` and ``fetch`` spans whose
``traceparent`` the API continues.

Locust counts each click as request type ``BROWSER``, name ``checkout page: pay``
(``checkout page: pay (js error)`` for a forced error, which sends nothing to the
API), timed from the click to the outcome on screen; an error or unknown outcome is a
failure. Each checkout the API answered goes to the client ledger (the key, status and
payment id the page shows), so ``--reconcile`` holds with browser users too.

``--browser-users N`` runs N of Locust's ``-u`` users as browser shoppers
(``fixed_count``; the rest stay protocol-level shoppers); 0 (default) runs none.
With no ``--host`` the embedded stack Locust starts serves the page; otherwise give
``--webapp-url``. At most :data:`MAX_BROWSER_USERS` per Locust process: each is a whole
browser (see the README for what one costs).
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any, ClassVar

from locust import User, constant, task

from paychaos.stack.webapp import PAGE_READY_JS
from paychaos.traffic.chromium import Browser, BrowserError, CpuMeter, Usage
from paychaos.traffic.ledger import LedgerEntry
from paychaos.traffic.options import MAX_BROWSER_USERS
from paychaos.traffic.runtime import runtime_of

__all__ = ["MAX_BROWSER_USERS", "PAY", "PAY_JS_ERROR", "REQUEST_TYPE", "BrowserShopper"]

log = logging.getLogger("paychaos.traffic.browser")

REQUEST_TYPE = "BROWSER"
PAY = "checkout page: pay"
PAY_JS_ERROR = "checkout page: pay (js error)"
#: The page's outcomes and the client ledger's.
LEDGER_OUTCOME = {
    "succeeded": "succeeded",
    "declined": "declined",
    "rejected": "rejected",
    "unknown": "unknown",
    "error": "unknown",
}
_STATUS = "document.getElementById('status')"


class BrowserShopper(User):
    """One shopper with one headless Chromium on the checkout page."""

    abstract = False
    paychaos_browser: ClassVar[bool] = True  # the plugin keeps this class only with --browser-users
    fixed_count = 0
    wait_time = constant(0)  # the visit thinks on its own (think times scale with the option)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.browser: Browser | None = None
        self.scratch: Path | None = None
        self.rng = random.Random()
        self.visits = 0
        self.started = 0.0
        self.peak: Usage | None = None
        self.cpu = CpuMeter()

    # -- lifecycle --------------------------------------------------------------------

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.page_url = str(getattr(options, "paychaos_webapp_url", "") or "").rstrip("/")
        if not self.page_url:
            raise BrowserError("no checkout page to drive: give --webapp-url (or no --host)")
        runtime = runtime_of(self.environment)
        self.settings = runtime.settings
        self.rng = random.Random(runtime.rng.getrandbits(64))
        self.methods = list(self.settings.method_mix)
        self.weights = [self.settings.method_mix[m] for m in self.methods]
        self.scratch = Path(tempfile.mkdtemp(prefix="paychaos-shopper-"))
        self.started = time.monotonic()
        try:
            self.browser = Browser(self.scratch, timeout_s=60, die_with_parent=True)
        except BaseException:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None
            raise

    def on_stop(self) -> None:
        browser, self.browser = self.browser, None
        if browser is not None:
            self._sample(browser)
            with contextlib.suppress(Exception):
                browser.close()
            peak = self.peak
            if peak is not None:
                log.info(
                    "browser shopper: %d visits in %.0f s; peak %d processes, PSS %.0f MiB, "
                    "RSS %.0f MiB; CPU %.1f s since its first page",
                    self.visits,
                    time.monotonic() - self.started,
                    peak.processes,
                    peak.pss_bytes / 2**20,
                    peak.rss_bytes / 2**20,
                    self.cpu.total_s,
                )
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def _sample(self, browser: Browser) -> None:
        usage = browser.usage()
        self.cpu.read(browser.cpu())
        if self.peak is None or usage.pss_bytes > self.peak.pss_bytes:
            self.peak = usage

    def _think(self, low_s: float, high_s: float) -> None:
        scale = self.settings.think_time_scale
        if scale > 0:
            time.sleep(self.rng.uniform(low_s, high_s) * scale)

    # -- the visit --------------------------------------------------------------------

    @task
    def visit(self) -> None:
        browser = self.browser
        assert browser is not None, "on_start made the browser"
        method = self.rng.choices(self.methods, self.weights)[0]
        forced = self.rng.random() < self.settings.js_error_rate
        query = {"method": method, **({"force_error": "1"} if forced else {})}
        timeout_s = self.settings.request_timeout_s + 10
        self.cpu.read(browser.cpu())  # renderers come and go with pages: read them often
        browser.goto(f"{self.page_url}/?{urllib.parse.urlencode(query)}")
        browser.wait(PAGE_READY_JS, timeout_s, "the page")
        self._think(1.0, 3.0)  # reading the cart
        start = time.perf_counter()
        error: Exception | None = None
        status: dict[str, str] = {}
        try:
            browser.click("#pay")
            browser.wait(f"{_STATUS}.dataset.outcome", timeout_s, "the checkout's outcome")
            status = dict(browser.eval(f"({{...{_STATUS}.dataset}})") or {})
        except BrowserError as exc:
            error = exc
        elapsed_ms = (time.perf_counter() - start) * 1000
        outcome = status.get("outcome", "")
        if error is None and outcome not in ("succeeded", "declined") and not forced:
            error = RuntimeError(f"checkout page: {outcome or 'no outcome'} ({method})")
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=PAY_JS_ERROR if forced else PAY,
            response_time=elapsed_ms,
            response_length=0,
            exception=error,
            context={"method": method},
        )
        self._ledger(status, elapsed_ms)
        self.visits += 1
        # the spans the tracer batches (1 s) go to Faro's transport now, then the page is
        # left: the SDK reports the vitals it holds (LCP, CLS, INP) when the page hides
        with contextlib.suppress(BrowserError):
            browser.eval("window.paychaosFlush ? window.paychaosFlush() : true")
        time.sleep(0.5)  # Faro's transport batches for 250 ms
        browser.goto("about:blank")
        self._sample(browser)
        self._think(2.0, 5.0)

    def _ledger(self, status: dict[str, str], elapsed_ms: float) -> None:
        """The checkout as the page saw it, when the page sent one."""
        key = status.get("key", "")
        if not key:
            return  # no request left the page (a forced JS error, or no outcome)
        amount = status.get("amount", "0")
        runtime_of(self.environment).ledger.write(
            LedgerEntry(
                ts=time.time(),
                key=key,
                method=status.get("method", ""),
                amount_cents=round(float(amount) * 100),
                currency=status.get("currency", "USD"),
                attempts=1,
                outcome=LEDGER_OUTCOME.get(status.get("outcome", ""), "unknown"),
                status=int(status.get("status") or 0),
                payment_id=status.get("paymentId") or None,
                trace_id=status.get("traceId") or None,
                latency_ms=round(elapsed_ms, 1),
            )
        )
