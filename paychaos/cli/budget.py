"""``paychaos budget``: does the traffic fit Grafana Cloud's free tier (the strategy's §7.3)?

::

    paychaos budget                                   # the running embedded stack, last 10 min
    paychaos budget --target docker --window 5m --json
    paychaos budget --limits my-tier.yaml --checkouts-per-day 2000 --checkouts-per-day 50000
    paychaos budget --explode shop_payments_total:1/checkout    # a per-customer label

Measures, over the window, the active series (by job, the top metrics and their
label with the most values), samples per second, and the bytes of logs, traces
and frontend events per checkout; then projects them to stores of N checkouts a
day against the free tier (``--limits``, default Grafana Cloud's, a YAML file to
edit when the vendor changes it). Exit 0 with a projection, 1 when the window
held no checkouts (the measurement is still shown), 2 on bad input (a bad limits
file names file:line: field).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Handler = Callable[[argparse.Namespace], int]


def _duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 600, 90s, 10m, 1h)")
    value = float(match[1]) * {"s": 1, "m": 60, "h": 3600, None: 1}[match[2]]
    if not 10 <= value <= 7 * 86400:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 10 s and 7 days")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def register(subparsers: Any) -> dict[str, Handler]:
    from paychaos.cli import add_target_option

    p = subparsers.add_parser(
        "budget",
        help="does the traffic fit Grafana Cloud's free tier? largest store, first limit",
        description=__doc__.split("\n\n")[2] if __doc__ else None,
    )
    add_target_option(p)
    p.add_argument(
        "--window", type=_duration, default=600.0, metavar="DURATION",
        help="measure over the last DURATION (600, 90s, 10m; default 10m)",
    )  # fmt: skip
    p.add_argument(
        "--settle-s", type=float, default=None,
        help="end the window this long ago, so the last scrape and telemetry batches are in "
        "(default: the target's scrape interval + 5 s)",
    )  # fmt: skip
    p.add_argument(
        "--limits", type=Path, default=None, metavar="FILE",
        help="the free tier's limits (YAML; default: Grafana Cloud's free tier shipped with paychaos)",
    )  # fmt: skip
    p.add_argument(
        "--checkouts-per-day", type=_positive, action="append", metavar="N",
        help="store sizes to project (repeatable; default 100, 1000, 10000, 100000)",
    )  # fmt: skip
    p.add_argument(
        "--explode", default=None, metavar="METRIC[:K[:S]]",
        help="the cardinality explosion to project: METRIC gains a label with K values a day "
        "(N, or R/checkout), each with S series (default shop_payments_total:1/checkout: "
        "a per-customer label); 'none' to skip",
    )  # fmt: skip
    p.add_argument(
        "--ship-interval-s", type=_positive, default=None,
        help="how often the store's Alloy scrapes in production (default 60, Alloy's default: "
        "1 DPM per series)",
    )  # fmt: skip
    p.add_argument(
        "--not-shipped", action="append", metavar="JOB",
        help="a job that does not go to the SaaS (repeatable; default prometheus, alertmanager, "
        "gateway, fault-proxy; 'none' ships every job)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="the report as JSON")
    return {"budget": cmd_budget}


def cmd_budget(args: argparse.Namespace) -> int:
    from paychaos.budget.limits import DEFAULT_LIMITS, load_limits
    from paychaos.budget.measure import NOT_SHIPPED, sources_of
    from paychaos.budget.project import DEFAULT_EXPLOSION, DEFAULT_SIZES, parse_explosion
    from paychaos.budget.report import (
        DEFAULT_SHIP_INTERVAL_S,
        render_text,
        run_budget,
        to_json,
    )
    from paychaos.targets.resolve import plan_target

    limits_file = args.limits or DEFAULT_LIMITS
    tier = load_limits(limits_file)  # a bad file fails before anything is read
    spec = args.explode or DEFAULT_EXPLOSION
    explosion = None if spec.strip().lower() == "none" else parse_explosion(spec)
    not_shipped: tuple[str, ...] = NOT_SHIPPED
    if args.not_shipped:
        not_shipped = tuple(j for j in args.not_shipped if j.lower() != "none")
    with plan_target(getattr(args, "target", None), args.state_dir).open() as session:
        target = session.target
        settle = args.settle_s
        if settle is None:
            settle = target.timing.scrape_interval_s + 5.0
        report = run_budget(
            sources_of(target),
            tier=tier,
            limits_file=limits_file,
            window_s=args.window,
            settle_s=settle,
            sizes=tuple(args.checkouts_per_day or DEFAULT_SIZES),
            explosion=explosion,
            ship_interval_s=args.ship_interval_s or DEFAULT_SHIP_INTERVAL_S,
            not_shipped=not_shipped,
        )
    if args.json:
        print(json.dumps(to_json(report), indent=2))
    else:
        print(render_text(report))
    if not report.complete:
        print("paychaos budget: no checkouts in the window: nothing to project", file=sys.stderr)
        return 1
    return 0
