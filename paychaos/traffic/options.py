"""The traffic options: Locust command-line flags, validated into one frozen object.

Every knob is a Locust option (in the web UI, and in the ``--help`` of
``python locustfiles/checkout.py``: Locust's own ``locust -f ... --help`` is printed
before the locustfile that adds them is imported); :func:`settings_from_options` turns Locust's namespace into
:class:`TrafficSettings` or raises :class:`~paychaos.contracts.errors.InvalidInput`
with one sentence naming the flag::

    settings = settings_from_options(environment.parsed_options)
    settings.method_mix            # {"visa": 0.45, "paypal": 0.3, ...}
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paychaos.contracts.domain import DEFAULT_MIX, METHODS
from paychaos.contracts.errors import InvalidInput

DEFAULT_METHOD_MIX = ",".join(f"{m}={share:g}" for m, share in DEFAULT_MIX.items())
SHAPES: tuple[str, ...] = ("none", "steady", "ramp", "diurnal", "flash-sale", "step")
STACK_DIR_ENV = "PAYCHAOS_STACK_DIR"
TARGET_ENV = "PAYCHAOS_TARGET"
DEFAULT_STACK_DIR = ".paychaos/locust"
#: Browser shoppers one Locust process may run (paychaos.traffic.browser_shopper).
MAX_BROWSER_USERS = 16


@dataclass(frozen=True)
class TrafficSettings:
    """Everything a shopper, shape, ledger and threshold needs, validated."""

    method_mix: Mapping[str, float] = field(
        default_factory=lambda: {m: s / sum(DEFAULT_MIX.values()) for m, s in DEFAULT_MIX.items()}
    )
    abandon_rate: float = 0.25
    js_error_rate: float = 0.01
    decline_card_rate: float = 0.02
    think_time_scale: float = 1.0
    max_attempts: int = 3
    request_timeout_s: float = 10.0
    rum: bool = True
    browse_path: str = ""
    ledger_dir: str = ".paychaos/ledger"
    collector_url: str = ""
    shape: str = "none"
    shape_params: Mapping[str, float] = field(default_factory=dict)
    arrival_rate_per_s: float = 0.0
    open_users: int = 0
    max_lateness_s: float = 5.0
    max_error_ratio: float | None = None
    max_p95_ms: float | None = None
    min_rate_per_s: float | None = None
    seed: int | None = None
    stack_dir: str = DEFAULT_STACK_DIR
    stack_gateway_latency_scale: float = 1.0
    browser_users: int = 0
    webapp_url: str = ""

    @property
    def open_model(self) -> bool:
        return self.arrival_rate_per_s > 0

    def open_slots(self) -> int:
        """Concurrent shoppers (greenlets) that keep the arrival schedule when responses slow."""
        if self.open_users > 0:
            return self.open_users
        return max(20, math.ceil(self.arrival_rate_per_s * 10))


def parse_method_mix(text: str) -> dict[str, float]:
    """``"visa=45,paypal=30,crypto=15,amex=10"`` → normalised shares.

    >>> parse_method_mix("visa=3,amex=1")
    {'visa': 0.75, 'amex': 0.25}
    """
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, raw = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in METHODS:
            raise InvalidInput(
                f"--method-mix: {part!r} is not METHOD=WEIGHT with METHOD one of {', '.join(METHODS)}"
            )
        try:
            weight = float(raw)
        except ValueError:
            raise InvalidInput(f"--method-mix: weight {raw!r} of {name} is not a number") from None
        if not math.isfinite(weight) or weight < 0:
            raise InvalidInput(f"--method-mix: weight of {name} must be >= 0, got {raw}")
        if name in mix:
            raise InvalidInput(f"--method-mix: {name} is given twice")
        mix[name] = weight
    total = sum(mix.values())
    if total <= 0:
        raise InvalidInput(f"--method-mix: needs at least one positive weight, got {text!r}")
    return {name: weight / total for name, weight in mix.items() if weight > 0}


def parse_shape_params(text: str) -> dict[str, float]:
    """``"period_s=600,low=0.2"`` → ``{"period_s": 600.0, "low": 0.2}``."""
    params: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, raw = part.partition("=")
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not sep or not name.strip() or not math.isfinite(value):
            raise InvalidInput(f"--shape-params: {part!r} is not NAME=NUMBER")
        params[name.strip()] = value
    return params


def _rate(name: str, value: float) -> float:
    if not 0 <= value <= 1:
        raise InvalidInput(f"{name}: must be between 0 and 1, got {value}")
    return value


def _non_negative(name: str, value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise InvalidInput(f"{name}: must be >= 0, got {value}")
    return value


def _optional_threshold(name: str, value: float | None) -> float | None:
    return None if value is None else _non_negative(name, value)


def settings_from_options(opts: argparse.Namespace | Any) -> TrafficSettings:
    """Validate Locust's parsed options into :class:`TrafficSettings`."""
    shape = str(opts.shape or "none")
    if shape not in SHAPES:
        raise InvalidInput(f"--shape: unknown shape {shape!r}; one of {', '.join(SHAPES)}")
    max_attempts = int(opts.max_attempts)
    if max_attempts < 1:
        raise InvalidInput(f"--max-attempts: must be at least 1, got {max_attempts}")
    open_users = int(opts.open_users)
    if open_users < 0:
        raise InvalidInput(f"--open-users: must be >= 0, got {open_users}")
    browser_users = int(getattr(opts, "browser_users", 0) or 0)
    if not 0 <= browser_users <= MAX_BROWSER_USERS:
        raise InvalidInput(
            f"--browser-users: must be between 0 and {MAX_BROWSER_USERS} (each is a whole "
            f"Chromium), got {browser_users}"
        )
    webapp_url = str(getattr(opts, "webapp_url", "") or "").rstrip("/")
    if webapp_url and not webapp_url.startswith(("http://", "https://")):
        raise InvalidInput(f"--webapp-url: {webapp_url!r} is not an http(s) URL")
    timeout_s = _non_negative("--request-timeout-s", float(opts.request_timeout_s))
    if timeout_s == 0:
        raise InvalidInput("--request-timeout-s: must be > 0")
    settings = TrafficSettings(
        method_mix=parse_method_mix(opts.method_mix),
        abandon_rate=_rate("--abandon-rate", float(opts.abandon_rate)),
        js_error_rate=_rate("--js-error-rate", float(opts.js_error_rate)),
        decline_card_rate=_rate("--decline-card-rate", float(opts.decline_card_rate)),
        think_time_scale=_non_negative("--think-time-scale", float(opts.think_time_scale)),
        max_attempts=max_attempts,
        request_timeout_s=timeout_s,
        rum=not bool(opts.no_rum),
        browse_path=str(opts.browse_path or ""),
        ledger_dir=str(opts.ledger_dir),
        collector_url=str(opts.collector_url or "").rstrip("/"),
        shape=shape,
        shape_params=parse_shape_params(opts.shape_params or ""),
        arrival_rate_per_s=_non_negative("--arrival-rate", float(opts.arrival_rate)),
        open_users=open_users,
        max_lateness_s=_non_negative("--max-lateness-s", float(opts.max_lateness_s)),
        max_error_ratio=_optional_threshold("--max-error-ratio", opts.max_error_ratio),
        max_p95_ms=_optional_threshold("--max-p95-ms", opts.max_p95_ms),
        min_rate_per_s=_optional_threshold("--min-rate", opts.min_rate),
        seed=opts.traffic_seed,
        stack_dir=str(opts.stack_dir),
        stack_gateway_latency_scale=_non_negative(
            "--stack-gateway-latency-scale", float(opts.stack_gateway_latency_scale)
        ),
        browser_users=browser_users,
        webapp_url=webapp_url,
    )
    if settings.browse_path and not settings.browse_path.startswith("/"):
        raise InvalidInput(f"--browse-path: must start with '/', got {settings.browse_path!r}")
    if settings.max_error_ratio is not None and settings.max_error_ratio > 1:
        raise InvalidInput(
            f"--max-error-ratio: must be between 0 and 1, got {opts.max_error_ratio}"
        )
    from paychaos.traffic.profiles import validate_shape  # shapes know their own parameters

    validate_shape(settings.shape, settings.shape_params)
    return settings


def add_arguments(parser: Any, environ: Mapping[str, str] | None = None) -> None:
    """Register the traffic flags on Locust's parser (``init_command_line_parser``)."""
    import os

    env = os.environ if environ is None else environ
    group = parser  # Locust's parser (include_in_web_ui works on it, not on groups)
    group.add_argument(
        "--method-mix",
        default=DEFAULT_METHOD_MIX,
        help="payment-method weights, e.g. visa=45,paypal=30,crypto=15,amex=10",
    )
    group.add_argument(
        "--abandon-rate", type=float, default=0.25, help="share of carts that never check out (0-1)"
    )
    group.add_argument(
        "--js-error-rate",
        type=float,
        default=0.01,
        help="share of payment clicks that hit a JS exception instead of paying (0-1)",
    )
    group.add_argument(
        "--decline-card-rate",
        type=float,
        default=0.02,
        help="share of card payments made with a test card the processor declines",
    )
    group.add_argument(
        "--think-time-scale",
        type=float,
        default=1.0,
        help="multiplies every shopper think time (0 = no thinking)",
    )
    group.add_argument(
        "--max-attempts",
        type=int,
        default=3,
        help="attempts per checkout; 502/503/504/409/timeouts are retried with the same Idempotency-Key",
    )
    group.add_argument(
        "--request-timeout-s",
        type=float,
        default=10.0,
        help="client timeout of one checkout request (seconds)",
    )
    group.add_argument(
        "--no-rum", action="store_true", default=False, help="do not push Faro RUM to the collector"
    )
    group.add_argument(
        "--browse-path",
        default="",
        help="GET this path on every page view (server load for browsing); empty = client-side only",
    )
    group.add_argument(
        "--ledger-dir",
        default=".paychaos/ledger",
        help="directory of the client ledgers (one JSONL file per Locust process)",
    )
    group.add_argument(
        "--collector-url",
        default="",
        help="collector for RUM and shopper traces (set automatically for the embedded stack)",
    )
    group.add_argument(
        "--shape",
        default="none",
        choices=SHAPES,
        help="load shape: steady, ramp, diurnal, flash-sale, step (none = Locust's -u/-r)",
    )
    group.add_argument(
        "--shape-params",
        default="",
        help="shape parameters NAME=NUMBER,..., e.g. period_s=600,low=0.2",
    )
    group.add_argument(
        "--arrival-rate",
        type=float,
        default=0.0,
        help="open model: target checkouts per second (0 = closed model, -u users)",
    )
    group.add_argument(
        "--open-users",
        type=int,
        default=0,
        help="open model: concurrent shopper slots (default max(20, 10 x rate))",
    )
    group.add_argument(
        "--max-lateness-s",
        type=float,
        default=5.0,
        help="open model: an arrival later than this is skipped (and counted)",
    )
    group.add_argument(
        "--max-error-ratio",
        type=float,
        default=None,
        help="threshold: fail the run when the checkout error ratio exceeds this (0-1)",
    )
    group.add_argument(
        "--max-p95-ms",
        type=float,
        default=None,
        help="threshold: fail the run when checkout p95 exceeds this (ms)",
    )
    group.add_argument(
        "--min-rate",
        type=float,
        default=None,
        help="threshold: fail the run when checkouts/s stay below this",
    )
    group.add_argument(
        "--traffic-seed",
        type=int,
        default=None,
        help="seed of the shopper pools (reproducible customers and carts)",
    )
    group.add_argument(
        "--target",
        default=env.get(TARGET_ENV, ""),
        help=(
            "the deployment to drive: embedded, docker, a target file or a name in targets/ "
            f"(env {TARGET_ENV}); sets --host, the collector and the gateway from the target"
        ),
    )
    group.add_argument(
        "--stack-dir",
        default=env.get(STACK_DIR_ENV, DEFAULT_STACK_DIR),
        help=f"state dir of the embedded stack started when --host is absent (env {STACK_DIR_ENV})",
    )
    group.add_argument(
        "--stack-gateway-latency-scale",
        type=float,
        default=1.0,
        help="embedded stack: gateway latency multiplier (0 = instant)",
    )
    group.add_argument(
        "--browser-users",
        type=int,
        default=0,
        help=(
            "how many of the -u users drive the React checkout page in headless Chromium "
            f"(one browser each, at most {MAX_BROWSER_USERS}); 0 = none"
        ),
    )
    group.add_argument(
        "--webapp-url",
        default="",
        help="the checkout page the browser users open (set automatically for the embedded "
        "stack Locust starts)",
    )
