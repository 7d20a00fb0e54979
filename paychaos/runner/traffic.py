"""Scenario traffic: the :class:`TrafficDriver` interface and an in-process asyncio driver.

:class:`AsyncTrafficDriver` reuses :mod:`paychaos.loadgen`'s checkout bodies
and runs an asyncio loop in a background thread: an open model (arrivals at
``rate_per_s``, linearly ramped over ``ramp_s``) or a closed one (``users``
each checking out then thinking 1 s). It behaves like a careful client:
retries 409/502/503/504 and transport errors with the *same* Idempotency-Key,
keeps a client ledger (:mod:`paychaos.traffic.ledger` format, for
:func:`paychaos.traffic.reconcile.reconcile`) and, as a
simulated browser, pushes Faro RUM (payment clicks, web vitals, an exception
for every failed attempt) to the collector. Bounded: in-flight requests are
capped and the run stops at ``duration_s``.

Besides the shoppers, the driver can run a *card tester* for a while
(:meth:`AsyncTrafficDriver.start_card_testing`, the ``card-testing`` fault of a
scenario): one customer of the same pools checking out small amounts with card
after card (:class:`paychaos.traffic.card_testing.CardTester`), at its own
rate, bounded in count and time, through the same client, ledger and stats.

It can also break the shoppers' pay button for a while
(:meth:`AsyncTrafficDriver.break_pay_button`, the ``broken-pay-button`` fault):
a ``share`` of the clicks (of one ``method``, or all) throws a JavaScript error in
the simulated browser, which its RUM reports (Faro exception, context ``method``
and ``screen: checkout``); that checkout is never sent, so no backend sees
anything. It ends by itself at its deadline, or when reverted.

Example::

    driver = AsyncTrafficDriver(api_url, collector_url)
    driver.start(scenario.traffic)
    driver.stats().rate_per_s
    driver.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Protocol

import aiohttp
import orjson

from paychaos.contracts.errors import FaultInjectionFailed, InvalidInput
from paychaos.contracts.scenario import Traffic
from paychaos.contracts.target import Checkout
from paychaos.stack.service import is_loopback
from paychaos.traffic import model
from paychaos.traffic.adapter import Cart, CheckoutClient
from paychaos.traffic.card_testing import CardTester
from paychaos.traffic.ledger import LedgerEntry
from paychaos.traffic.model import Payment, RetryPolicy, ShopperModel
from paychaos.traffic.rum import JS_ERRORS, Journey

MAX_IN_FLIGHT = 200
MAX_RUM_QUEUED = 2000
THINK_S = 1.0
STATS_WINDOW_S = 5.0


@dataclass(frozen=True)
class TrafficStats:
    """A snapshot: totals, and rate/error ratio over the last few seconds."""

    sent: int
    completed: int
    errors: int
    in_flight: int
    dropped: int
    rate_per_s: float
    error_ratio: float
    window_completed: int = 0
    """Checkouts completed in the recent window ``error_ratio`` is computed over."""
    button_errors: int = 0
    """Clicks on a broken pay button (``break_pay_button``): checkouts never sent."""


@dataclass
class BrokenButton:
    """A broken pay button: ``share`` of the clicks of ``method`` (``None``: any) throw
    ``error`` (JS type, message) until ``until`` (monotonic); ``counts`` what it did."""

    method: str | None
    share: float
    until: float
    error: tuple[str, str]
    rng: random.Random
    counts: dict[str, int]

    def breaks(self, method: str, now: float) -> bool:
        """Whether this click throws (the share is drawn from the button's own generator,
        not from the shoppers')."""
        if now >= self.until or (self.method is not None and method != self.method):
            return False
        return self.rng.random() < self.share


class LedgerFile:
    """A client ledger file in :mod:`paychaos.traffic.ledger`'s format (one JSON line per
    checkout, flushed as written), without its gevent flusher: this is an asyncio process."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh: IO[bytes] | None = path.open("ab")

    def write(self, entry: LedgerEntry) -> None:
        if self._fh is not None:
            self._fh.write(orjson.dumps(asdict(entry)) + b"\n")
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class TrafficDriver(Protocol):
    """Starts traffic in the background, reports as it goes, stops (idempotently)."""

    def start(self, traffic: Traffic) -> None: ...

    def stats(self) -> TrafficStats: ...

    def stop(self) -> TrafficStats: ...

    def ledger_paths(self) -> list[Path]: ...


class AsyncTrafficDriver:
    """The in-process driver (asyncio + aiohttp in one background thread)."""

    def __init__(
        self,
        api_url: str,
        collector_url: str | None = None,
        *,
        ledger_dir: Path | None = None,
        seed: int = 7,
        allow_hosts: Iterable[str] = (),
        checkout: Checkout | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """``checkout``: the target's checkout API and adapter (default: paychaos' own API
        at ``api_url``); secrets of its headers are resolved from ``environ`` here."""
        checkout = checkout or Checkout(url=api_url)
        api_url = checkout.url
        self.client = CheckoutClient(checkout, environ)  # InvalidTarget before any load
        host = aiohttp.client.URL(api_url).host or ""
        if not is_loopback(host) and host not in set(allow_hosts):
            raise InvalidInput(
                f"{api_url} is not loopback; traffic goes to loopback only unless the "
                f"target's allow_hosts lists {host}"
            )
        self.api_url = api_url.rstrip("/")
        self.collector_url = collector_url.rstrip("/") if collector_url else None
        self.seed = seed
        self._lock = threading.Lock()
        self._completed = 0
        self._ledger_dir = ledger_dir or Path(tempfile.mkdtemp(prefix="paychaos-ledger-"))
        self._ledger = LedgerFile(self._ledger_dir / f"ledger-run-{uuid.uuid4().hex[:8]}.jsonl")
        self._done: deque[tuple[float, bool]] = deque()
        self._sent = self._errors = self._in_flight = self._dropped = 0
        self._rum: list[Journey] = []
        self.rum_dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._traffic: Traffic | None = None
        self._actors: dict[str, tuple[threading.Event, dict[str, int]]] = {}
        self._broken: dict[str, BrokenButton] = {}
        self._button_errors = 0
        self._actor_tasks: set[asyncio.Task[None]] = set()

    # -- interface ------------------------------------------------------------

    def start(self, traffic: Traffic) -> None:
        if self._thread is not None:
            raise RuntimeError("traffic already started")
        self._thread = threading.Thread(
            target=self._thread_main, args=(traffic,), name="paychaos-traffic", daemon=True
        )
        self._thread.start()

    def stats(self) -> TrafficStats:
        now = time.monotonic()
        with self._lock:
            while self._done and self._done[0][0] < now - STATS_WINDOW_S:
                self._done.popleft()
            recent = len(self._done)
            recent_errors = sum(1 for _, failed in self._done if failed)
            return TrafficStats(
                sent=self._sent,
                completed=self._completed,
                errors=self._errors,
                in_flight=self._in_flight,
                dropped=self._dropped,
                rate_per_s=recent / STATS_WINDOW_S,
                error_ratio=recent_errors / recent if recent else 0.0,
                window_completed=recent,
                button_errors=self._button_errors,
            )

    def stop(self) -> TrafficStats:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return self.stats()

    def wait(self, timeout_s: float) -> bool:
        """Wait for the traffic to end by itself (its duration); True when it has."""
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        return not self.running()

    def ledger_paths(self) -> list[Path]:
        """The client ledger (``paychaos.traffic.ledger`` format) of this driver."""
        return [self._ledger.path]

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start_card_testing(
        self,
        actor: str,
        *,
        rate_per_s: float,
        duration_s: float,
        method: str = "visa",
        cards: int = 40,
        rng: random.Random | None = None,
    ) -> dict[str, str]:
        """Start a card tester named ``actor`` (at most ``rate_per_s * duration_s`` checkouts,
        for at most ``duration_s``); returns what the run injected (``customer_id``...)."""
        loop, session, traffic = self._loop, self._session, self._traffic
        if loop is None or session is None or traffic is None or not self.running():
            raise FaultInjectionFailed(f"{actor}: card testing needs the shoppers' traffic running")
        if actor in self._actors:
            raise FaultInjectionFailed(f"{actor}: this card tester is already running")
        tester = CardTester(
            model.pools_for(self.seed), rng or random.Random(), method=method, cards=cards
        )
        stop = threading.Event()
        counts = {"attempts": 0}
        self._actors[actor] = (stop, counts)
        asyncio.run_coroutine_threadsafe(
            self._card_testing(session, traffic, tester, actor, rate_per_s, duration_s, stop),
            loop,
        )
        return {
            "customer_id": tester.customer_id,
            "method": method,
            "cards": str(len(tester.cards)),
            "amount": f"{tester.amount_cents / 100:.2f} {tester.currency}",
        }

    def break_pay_button(
        self,
        actor: str,
        *,
        duration_s: float,
        share: float = 1.0,
        method: str | None = None,
        error: tuple[str, str] = JS_ERRORS[0],
        rng: random.Random | None = None,
    ) -> dict[str, str]:
        """Break the shoppers' pay button (``actor`` names the breakage) for ``duration_s``:
        ``share`` of the clicks of ``method`` (``None``: every method) throw ``error``
        instead of sending the checkout. It ends by itself at its deadline; ``stop_actor``
        mends it before. Returns what was injected."""
        if not self.running() or self._traffic is None:
            raise FaultInjectionFailed(f"{actor}: a broken pay button needs the shoppers running")
        with self._lock:
            if actor in self._broken:
                raise FaultInjectionFailed(f"{actor}: this pay button is already broken")
            self._broken[actor] = BrokenButton(
                method,
                share,
                time.monotonic() + duration_s,
                error,
                rng or random.Random(),
                {"clicks_broken": 0},
            )
        return {
            "method": method or "*",
            "share": f"{share:g}",
            "error": f"{error[0]}: {error[1]}",
            "rum": "on" if self._traffic.rum else "off",
        }

    def stop_actor(self, actor: str) -> dict[str, int]:
        """Stop actor ``actor`` (idempotent; its checkouts in flight complete); its counts."""
        with self._lock:
            button = self._broken.pop(actor, None)
        if button is not None:
            return dict(button.counts)
        entry = self._actors.get(actor)
        if entry is None:
            return {}
        stop, counts = entry
        stop.set()
        return dict(counts)

    # -- internals --------------------------------------------------------------

    def _thread_main(self, traffic: Traffic) -> None:
        try:
            asyncio.run(self._run(traffic))
        except BaseException as exc:  # reported by the runner, never silently lost
            self.failure = exc
        finally:
            with self._lock:
                self._ledger.close()

    async def _card_testing(
        self,
        session: aiohttp.ClientSession,
        traffic: Traffic,
        tester: CardTester,
        actor: str,
        rate_per_s: float,
        duration_s: float,
        stop: threading.Event,
    ) -> None:
        """The tester's loop: one checkout every ``1/rate_per_s``, bounded in count and time."""
        task = asyncio.current_task()
        if task is not None:
            self._actor_tasks.add(task)
        rng = random.Random()
        retry = RetryPolicy(max_attempts=traffic.retries + 1)
        counts = self._actors[actor][1]
        limit = max(1, round(rate_per_s * duration_s))
        started = time.monotonic()
        end = started + duration_s
        tasks: set[asyncio.Task[None]] = set()
        tag = uuid.uuid4().hex[:8]
        for attempt in range(limit):
            at = started + attempt / rate_per_s
            while not (stop.is_set() or self._stop.is_set()) and time.monotonic() < at:
                await asyncio.sleep(min(at - time.monotonic(), 0.2))
            if stop.is_set() or self._stop.is_set() or time.monotonic() >= end:
                break
            if len(tasks) >= MAX_IN_FLIGHT:
                with self._lock:
                    self._dropped += 1
                continue
            key = f"chk-{tag}-ct{attempt}"
            job = asyncio.create_task(
                self._checkout(
                    session, traffic, None, retry, rng, key, cart=tester.cart(attempt, key)
                )
            )
            tasks.add(job)
            job.add_done_callback(tasks.discard)
            counts["attempts"] += 1
        if tasks:
            await asyncio.wait(tasks, timeout=traffic.request_timeout_s * 2)

    async def _run(self, traffic: Traffic) -> None:
        rng = random.Random(self.seed)
        shoppers = ShopperModel({str(k): v for k, v in traffic.mix.items()}, seed=self.seed)
        retry = RetryPolicy(max_attempts=traffic.retries + 1)
        run_tag = uuid.uuid4().hex[:8]
        timeout = aiohttp.ClientTimeout(total=traffic.request_timeout_s)
        connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
        started = time.monotonic()
        end = started + traffic.duration_s
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            self._loop, self._session, self._traffic = asyncio.get_running_loop(), session, traffic
            rum_stop = asyncio.Event()
            rum_task = (
                asyncio.create_task(self._rum_pusher(session, rum_stop)) if traffic.rum else None
            )
            tasks: set[asyncio.Task[None]] = set()
            index = 0

            def launch() -> None:
                nonlocal index
                key = f"chk-{run_tag}-{index}"
                index += 1
                task = asyncio.create_task(
                    self._checkout(session, traffic, shoppers, retry, rng, key)
                )
                tasks.add(task)
                task.add_done_callback(tasks.discard)

            if traffic.rate_per_s is not None:
                next_at = started
                while not self._stop.is_set() and time.monotonic() < end:
                    now = time.monotonic()
                    if now < next_at:
                        await asyncio.sleep(min(next_at - now, 0.2))
                        continue
                    elapsed = now - started
                    rate = traffic.rate_per_s
                    if traffic.shape == "ramp" and traffic.ramp_s > 0 and elapsed < traffic.ramp_s:
                        rate = max(rate * elapsed / traffic.ramp_s, 0.5)
                    if len(tasks) >= MAX_IN_FLIGHT:
                        with self._lock:
                            self._dropped += 1
                    else:
                        launch()
                    next_at += 1.0 / rate
                    next_at = max(next_at, now - 1.0)  # no burst after a stall
            else:
                users = traffic.users or 1

                async def user(number: int) -> None:
                    if traffic.shape == "ramp" and traffic.ramp_s > 0:
                        await asyncio.sleep(traffic.ramp_s * number / users)
                    visits = 0
                    while not self._stop.is_set() and time.monotonic() < end:
                        key = f"chk-{run_tag}-u{number}-{visits}"
                        visits += 1
                        await self._checkout(session, traffic, shoppers, retry, rng, key)
                        await asyncio.sleep(THINK_S)

                tasks.update(asyncio.create_task(user(n)) for n in range(users))
                while tasks and not self._stop.is_set() and time.monotonic() < end:
                    await asyncio.sleep(0.2)
            self._loop = None  # no card tester starts from here on
            for stop, _ in self._actors.values():
                stop.set()
            pending = {*tasks, *self._actor_tasks}
            if pending:
                await asyncio.wait(pending, timeout=traffic.request_timeout_s * 2)
                for task in pending:
                    task.cancel()
            if rum_task is not None:
                # not cancelled: a cancel mid-flush lost the bodies that flush had taken
                rum_stop.set()
                await rum_task
                await self._flush_rum(session)

    async def _checkout(
        self,
        session: aiohttp.ClientSession,
        traffic: Traffic,
        shoppers: ShopperModel | None,
        retry: RetryPolicy,
        rng: random.Random,
        key: str,
        *,
        cart: Cart | None = None,
    ) -> None:
        """One shopper's checkout through the target's adapter, retried with the same key
        while the answer says *retry* or is unknown (a transport error, an unmapped status).
        With ``cart`` (a card tester's): that cart, and no browser RUM (a script, no page)."""
        journey: Journey | None = None
        method = cart.method if cart is not None else ""
        if cart is None:
            assert shoppers is not None
            purchase = shoppers.purchase(rng)
            cart, method = purchase.cart(key), purchase.method
            broken = self._broken_button(method)
            if broken is not None:
                self._click_broken_button(traffic, rng, purchase, key, broken)
                return
            if traffic.rum:
                journey = model.visit(rng, purchase, f"paychaos-{self.seed}-{key}")
                journey.page_view(rng, "checkout")
                model.click_payment(journey, purchase)
        payment = Payment(self.client, cart, retry)
        request = payment.request
        with self._lock:
            self._sent += 1
            self._in_flight += 1
        started = time.monotonic()
        try:
            while True:
                try:
                    async with session.request(
                        request.method, request.url, data=request.body, headers=request.headers
                    ) as resp:
                        raw = await resp.read()
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError):
                    status, raw = 0, b""
                payment.answer(status, raw)
                if journey is not None and model.failed_attempt(status):
                    model.attempt_failed(journey, method, status)
                if payment.done or self._stop.is_set():
                    break
                await asyncio.sleep(payment.backoff_s(rng))
        finally:
            failed = not payment.final
            latency_ms = (time.monotonic() - started) * 1000
            entry = payment.ledger_entry(time.time(), latency_ms)
            if journey is not None:
                model.payment_result(journey, rng, method, entry.outcome)
            with self._lock:
                self._in_flight -= 1
                self._completed += 1
                self._errors += int(failed)
                self._done.append((time.monotonic(), failed))
                self._ledger.write(entry)
                if journey is not None:
                    if len(self._rum) < MAX_RUM_QUEUED:
                        self._rum.append(journey)
                    else:
                        self.rum_dropped += 1

    def _broken_button(self, method: str) -> BrokenButton | None:
        """The broken pay button this click of ``method`` hits, if any (one past its
        deadline breaks nothing: it has mended by itself; its counts stay for the revert)."""
        now = time.monotonic()
        with self._lock:
            for button in self._broken.values():
                if button.breaks(method, now):
                    button.counts["clicks_broken"] += 1
                    self._button_errors += 1
                    return button
        return None

    def _click_broken_button(
        self,
        traffic: Traffic,
        rng: random.Random,
        purchase: model.Purchase,
        key: str,
        button: BrokenButton,
    ) -> None:
        """The shopper clicks pay, the page throws; its RUM says so, no checkout leaves."""
        if not traffic.rum:
            return  # nobody is told: the failure stays invisible
        journey = model.visit(rng, purchase, f"paychaos-{self.seed}-{key}")
        journey.page_view(rng, "checkout")
        model.js_error(journey, rng, purchase, button.error)
        with self._lock:
            if len(self._rum) < MAX_RUM_QUEUED:
                self._rum.append(journey)
            else:
                self.rum_dropped += 1

    async def _rum_pusher(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        """Flush the queued RUM every second until ``stop``; a flush under way completes."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            await self._flush_rum(session)

    async def _flush_rum(self, session: aiohttp.ClientSession) -> None:
        """Send the queued visits' Faro bodies to the collector (one POST each, a few at a time)."""
        with self._lock:
            batch, self._rum = self._rum, []
        if self.collector_url is None or not batch:
            return
        url = self.collector_url + "/collect"
        gate = asyncio.Semaphore(8)

        async def post(journey: Journey) -> None:
            async with gate:
                try:
                    async with session.post(
                        url,
                        data=journey.payload(),
                        headers={"Content-Type": "application/json"},
                    ) as resp:
                        await resp.read()
                except (aiohttp.ClientError, TimeoutError):
                    with self._lock:
                        self.rum_dropped += 1  # counted, never silently lost

        await asyncio.gather(*(post(j) for j in batch))
