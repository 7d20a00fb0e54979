"""Helpers for the chaos tests: background checkout load, metric scraping, bounded waits."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import orjson

from paychaos.contracts.target import Checkout
from paychaos.traffic.adapter import CheckoutClient
from paychaos.traffic.model import Payment, RetryPolicy, shopper_model

REPO = Path(__file__).resolve().parents[2]


class Load:
    """A few threads posting checkouts until stopped; bounded by ``max_duration_s``."""

    def __init__(
        self,
        api_url: str,
        methods: Sequence[str] = ("visa", "paypal"),
        threads: int = 3,
        max_duration_s: float = 150.0,
    ) -> None:
        self.url = api_url.rstrip("/") + "/api/checkout"
        self.methods = tuple(methods)
        self.results: list[tuple[float, str, int]] = []
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_duration_s
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def _run(self, index: int) -> None:
        rng = random.Random(index)
        shoppers = shopper_model(seed=7)  # the shopper model every driver uses
        n = 0
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            method = self.methods[n % len(self.methods)]
            cart = shoppers.purchase(rng, method).cart(f"chaos-{index}-{n}")
            body = json.dumps(cart.builtin_body()).encode()
            req = urllib.request.Request(self.url, data=body, method="POST")
            req.add_header("Content-Type", "application/json")
            req.add_header("Idempotency-Key", f"chaos-{index}-{n}-{rng.getrandbits(32):08x}")
            sent_at = time.time()
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    code = int(resp.status)
            except urllib.error.HTTPError as exc:
                exc.close()
                code = exc.code
            except OSError:
                code = 0
            with self._lock:
                self.results.append((sent_at, method, code))
            n += 1
            time.sleep(0.02)

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def codes_since(self, since: float) -> Counter[tuple[str, int]]:
        """Outcomes of the checkouts sent at or after ``since``."""
        with self._lock:
            return Counter((m, c) for ts, m, c in self.results if ts >= since)


class RetryingCheckouts:
    """A careful client: ``threads`` x ``per_thread`` checkouts, each retried with the same
    Idempotency-Key (the shared :class:`RetryPolicy`) until a final answer, every one a line
    of a client ledger at ``ledger`` (the format :func:`paychaos.traffic.reconcile.reconcile`
    reads). Bounded by the count and by ``max_duration_s``."""

    def __init__(
        self,
        api_url: str,
        ledger: Path,
        *,
        threads: int = 3,
        per_thread: int = 20,
        gap_s: float = 0.1,
        policy: RetryPolicy | None = None,
        max_duration_s: float = 60.0,
    ) -> None:
        self.client = CheckoutClient(Checkout(url=api_url))
        self.ledger = ledger
        self.per_thread = per_thread
        self.gap_s = gap_s
        self.policy = policy or RetryPolicy(max_attempts=15, base_s=0.25, cap_s=1.0)
        self.attempts: list[tuple[float, float, str, int]] = []  # sent, answered, key, status
        self.shoppers = shopper_model(seed=11)  # its pools built here, before any thread runs
        self._deadline = time.monotonic() + max_duration_s
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def _send(self, payment: Payment) -> tuple[int, bytes]:
        req = payment.request
        request = urllib.request.Request(
            req.url, data=req.body, method=req.method, headers=dict(req.headers)
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read()
        except OSError:
            return 0, b""

    def _run(self, index: int) -> None:
        rng = random.Random(index)
        shoppers = self.shoppers
        tag = f"restart-{index}-{uuid.uuid4().hex[:12]}"  # unique across runs on one stack
        with self.ledger.open("ab") as fh:
            for n in range(self.per_thread):
                if time.monotonic() >= self._deadline:
                    return
                payment = Payment(
                    self.client, shoppers.purchase(rng).cart(f"{tag}-{n}"), self.policy
                )
                started = time.perf_counter()
                while time.monotonic() < self._deadline:
                    sent_at = time.time()
                    status, body = self._send(payment)
                    payment.answer(status, body)
                    with self._lock:
                        self.attempts.append((sent_at, time.time(), payment.cart.key, status))
                    if payment.done:
                        break
                    time.sleep(payment.backoff_s(rng))
                latency_ms = (time.perf_counter() - started) * 1000
                entry = payment.ledger_entry(time.time(), latency_ms)
                fh.write(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
                fh.flush()
                time.sleep(self.gap_s)

    def start(self) -> RetryingCheckouts:
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout_s: float) -> bool:
        """Wait for every thread (bounded); True when all are done."""
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)


def get_text(url: str, timeout_s: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        return str(resp.read().decode())


def metric_values(url: str, name: str) -> dict[str, float]:
    """``{label-set text: value}`` of one metric family from a /metrics page."""
    values: dict[str, float] = {}
    for line in get_text(url).splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, value = line.rpartition(" ")
            values[key[len(name) :]] = float(value)
    return values


def wait_for(check: Callable[[], object], timeout_s: float, interval_s: float = 0.25) -> object:
    """Poll ``check`` until it returns something truthy (bounded); returns the last result."""
    deadline = time.monotonic() + timeout_s
    result = check()
    while not result and time.monotonic() < deadline:
        time.sleep(interval_s)
        result = check()
    return result


def cli_argv(state_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "paychaos.cli", "--state-dir", str(state_dir), "chaos", *args]


@contextmanager
def controller_process(state_dir: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """``paychaos chaos inject ... --wait`` as a subprocess (always killed at the end)."""
    proc = subprocess.Popen(
        cli_argv(state_dir, "inject", *args, "--wait"),
        cwd=str(REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def read_injected_line(proc: subprocess.Popen[str], timeout_s: float = 20.0) -> str:
    """The ``injected f_...`` line of a controller subprocess (bounded wait)."""
    assert proc.stdout is not None
    result: list[str] = []

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            result.append(line)
            if line.startswith("injected") or "Error" in line:
                return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout_s)
    text = "".join(result)
    lines = [line for line in text.splitlines() if line.startswith("injected ")]
    assert lines, f"controller did not inject: {text!r}"
    return lines[0]
