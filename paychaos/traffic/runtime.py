"""Per-process state of the shoppers: settings, pools, ledger, tracer, RUM, stats.

Built lazily by the first shopper of a process (on a worker, after the
master's spawn message has delivered the run's options), shared by every
shopper of that process, flushed on ``test_stop`` and closed on ``quitting``.
A master never builds one (it runs no shopper), so it writes no ledger.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import secrets
import urllib.parse
from typing import Any

from paychaos.contracts.errors import InvalidInput
from paychaos.contracts.target import Checkout
from paychaos.traffic.adapter import CheckoutClient
from paychaos.traffic.business import BusinessStats
from paychaos.traffic.ledger import ClientLedger
from paychaos.traffic.model import RetryPolicy, ShopperModel
from paychaos.traffic.open_model import ArrivalSchedule
from paychaos.traffic.options import TrafficSettings, settings_from_options
from paychaos.traffic.profiles import make_profile
from paychaos.traffic.rum_sender import RumSender
from paychaos.traffic.tracing import ShopperTracer

log = logging.getLogger("paychaos.traffic")

_ATTR = "_paychaos_traffic_runtime"
RETRY_SUFFIX = " [retry]"


def checkout_name(checkout: Checkout) -> str:
    """The Locust stats name of a checkout request: the adapter's path (``{key}`` kept)."""
    return checkout.adapter.path


class TrafficRuntime:
    """Everything the shoppers of one Locust process share.

    ``checkout`` is the target's checkout API and adapter (its secrets are
    resolved here, once, from this process's environment).
    """

    def __init__(
        self, settings: TrafficSettings, run_id: str, checkout: Checkout, workers: int = 1
    ) -> None:
        self.settings = settings
        self.run_id = run_id
        self.rng = random.Random(settings.seed)
        self.model = ShopperModel(
            settings.method_mix, seed=settings.seed, decline_rate=settings.decline_card_rate
        )
        self.client = CheckoutClient(checkout)
        self.retry = RetryPolicy(max_attempts=settings.max_attempts)
        origin = urllib.parse.urlsplit(self.client.base_url)
        self.origin_len = len(f"{origin.scheme}://{origin.netloc}")
        self.name = checkout_name(checkout)
        self.retry_name = self.name + RETRY_SUFFIX
        self.ledger = ClientLedger.for_process(settings.ledger_dir, run_id)
        self.tracer = ShopperTracer.create(settings.collector_url)
        self.rum = (
            RumSender(settings.collector_url) if settings.rum and settings.collector_url else None
        )
        self.business = BusinessStats()
        self.key_prefix = f"chk-{run_id}-{os.getpid():x}-{secrets.token_hex(3)}"
        self._keys = itertools.count(1)
        self.schedule: ArrivalSchedule | None = None
        if settings.open_model:
            self.schedule = ArrivalSchedule(
                settings.arrival_rate_per_s / max(1, workers),
                make_profile(settings.shape, settings.shape_params),
                rng=random.Random(self.rng.getrandbits(64)),
                max_lateness_s=settings.max_lateness_s,
            )
        log.info(
            "shoppers ready: ledger %s, RUM %s, tracing %s",
            self.ledger.path,
            "on" if self.rum else "off",
            "on" if self.tracer.enabled else "off",
        )

    def next_key(self) -> str:
        return f"{self.key_prefix}-{next(self._keys)}"

    def flush(self) -> None:
        """Push buffered ledger lines, RUM and spans out (end of a test run)."""
        self.ledger.flush()
        if self.rum is not None:
            self.rum.flush()
        self.tracer.flush()

    def close(self) -> None:
        self.flush()
        if self.rum is not None:
            self.rum.close()
            rum = self.rum
            log.info(
                "RUM: %s bodies sent in %s batches, %s failed, %s dropped",
                rum.sent,
                rum.batches,
                rum.failed,
                rum.dropped,
            )
        self.tracer.shutdown()
        self.ledger.close()

    def report(self) -> dict[str, Any]:
        """What a worker sends the master with each stats report (cumulative)."""
        return {
            "business": self.business.to_json(),
            "open": self.schedule.snapshot() if self.schedule is not None else None,
        }


def runtime_of(environment: Any) -> TrafficRuntime:
    """This process's runtime, built on first use from the (master's) options."""
    runtime: TrafficRuntime | None = getattr(environment, _ATTR, None)
    if runtime is not None:
        return runtime
    with _build_lock():  # building yields to other greenlets: build exactly once
        runtime = getattr(environment, _ATTR, None)
        if runtime is not None:
            return runtime
        options = environment.parsed_options
        workers = int(getattr(options, "expect_workers", 1) or 1) if _is_worker(environment) else 1
        runtime = TrafficRuntime(
            settings_from_options(options),
            str(getattr(options, "paychaos_run_id", "") or "local"),
            checkout_of(environment),
            workers,
        )
        setattr(environment, _ATTR, runtime)
    return runtime


def checkout_of(environment: Any) -> Checkout:
    """The checkout API the shoppers drive: the target's (``--target``, sent by the master
    as JSON in ``--paychaos-checkout``), else paychaos' own API at ``--host``."""
    options = environment.parsed_options
    spec = str(getattr(options, "paychaos_checkout", "") or "")
    if spec:
        return Checkout.model_validate_json(spec)
    host = environment.host or next(
        (u.host for u in environment.user_classes if getattr(u, "host", None)), None
    )
    if not host:
        raise InvalidInput("no checkout API to drive: give --host or --target")
    return Checkout(url=str(host))


_LOCK: Any = None


def _build_lock() -> Any:
    global _LOCK
    if _LOCK is None:
        from gevent.lock import BoundedSemaphore

        _LOCK = BoundedSemaphore(1)
    return _LOCK


def existing_runtime(environment: Any) -> TrafficRuntime | None:
    return getattr(environment, _ATTR, None)


def _is_worker(environment: Any) -> bool:
    from locust.runners import WorkerRunner

    return isinstance(environment.runner, WorkerRunner)
