"""``paychaos oom-demo``: the seed's t3.medium warning (§7.1), shown with a real OOM killer.

Runs the same flash sale against several layouts (default: Option A on a
t3.medium, Option A on a t3.large, Option C on a t3.medium), one after the
other, each inside a memory cgroup sized like the instance, then prints a
summary table and writes ``report.html`` (plots embedded) and ``results.json``.

Example::

    paychaos oom-demo --scale 0.1 --out .paychaos/oom-demo
    paychaos oom-demo --layout A@t3.medium --layout A@t3.large --bad-deploy-at 10
    paychaos oom-demo --credits --bad-deploy-at 1 --scale 1 --layout A@t3.medium
    python -m paychaos.cli.oom oom-demo --layout A@t3.medium --instance tiny=1,0.5
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from paychaos.contracts.errors import InvalidInput, MissingDependency

DEFAULT_OUT = Path(".paychaos/oom-demo")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be in (0, 1]")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r} must be in (0, 1000]")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} must be in [0, 3600] seconds")
    return value


def register(subparsers: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    p = subparsers.add_parser(
        "oom-demo",
        help="show the seed's t3.medium OOM warning with a real cgroup and OOM killer",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument(
        "--layout",
        action="append",
        metavar="OPTION@INSTANCE",
        help="A@t3.medium, C@t3.large ... (repeatable; default A@t3.medium A@t3.large C@t3.medium)",
    )
    p.add_argument(
        "--instance",
        action="append",
        default=[],
        metavar="NAME=VCPU,MEM_GIB",
        help="define an instance type, e.g. m7g.medium=1,4 (repeatable)",
    )
    p.add_argument(
        "--instances-file", type=Path, help="YAML: instances: {name: {vcpu, memory_gib}}"
    )
    p.add_argument(
        "--scale",
        type=_fraction,
        default=0.1,
        help="shrink every memory figure (modelled footprints and the limit minus the real "
        "part) by this factor (default 0.1)",
    )
    p.add_argument(
        "--traffic-factor",
        type=_positive,
        default=None,
        help="a multiplier, off by default (1 = only what is really sent): the modelled "
        "components see N x the span/log rates the driver causes (a bigger sale than 2 shared "
        "cores send); when used, it is printed in the headline of every output",
    )
    p.add_argument(
        "--bad-deploy-at",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="the cardinality explosion: this far into the sale the API starts labelling a "
        "checkout histogram by order id (21 new series per checkout) until the run ends",
    )
    p.add_argument(
        "--sale-seconds",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="with --bad-deploy-at: how long the steady sale lasts (default 90, 60 with --quick)",
    )
    p.add_argument(
        "--dashboard-every",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="with --bad-deploy-at: from the deploy on, evaluate the dashboard's heavy panels "
        "(the seed's 24 h increase/bottomk, and the same over the per-order metric) every "
        "SECONDS, recording their time and Prometheus' memory",
    )
    p.add_argument(
        "--until-kill",
        action="store_true",
        help="with --bad-deploy-at: end a layout's sale 12 s after its first kernel OOM kill, "
        "and drive the layouts after a killed one until their Prometheus holds at least the "
        "head series the killed one peaked at (the same trajectory, however fast this machine "
        "sends); --sale-seconds stays the bound",
    )
    p.add_argument(
        "--credits",
        action="store_true",
        help="noisy neighbour: the same steady load with the t3 CPU credits spent (the "
        "cgroup's CPU quota at the baseline) and with a full balance, side by side in four "
        "blocks (spent, full, full, spent: a drift over the run weighs on both); with "
        "--bad-deploy-at the monitoring's own CPU (scrapes of the exploding metric) competes",
    )
    p.add_argument("--db-on-instance", action="store_true", help="PostgreSQL on the box too")
    p.add_argument("--quick", action="store_true", help="a shorter ramp (CI)")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"report dir (default {DEFAULT_OUT})"
    )
    return {"oom-demo": cmd_oom_demo}


def cmd_oom_demo(args: argparse.Namespace) -> int:
    from paychaos.oom.layouts import DEFAULT_LAYOUTS, parse_layout
    from paychaos.oom.profiles import load_profiles, parse_instance_arg
    from paychaos.stack.cgroups import CgroupUnavailable, detect

    extra = load_profiles(args.instances_file) if args.instances_file else {}
    for text in args.instance:
        profile = parse_instance_arg(text)
        extra[profile.name] = profile
    layouts = [
        parse_layout(text, extra, db_on_instance=args.db_on_instance)
        for text in (args.layout or DEFAULT_LAYOUTS)
    ]
    keys = [layout.key for layout in layouts]
    if len(set(keys)) != len(keys):
        raise InvalidInput(f"--layout given twice: {keys}")
    try:
        detect()
    except CgroupUnavailable as exc:
        raise MissingDependency(
            f"{exc}; the demonstration needs a writable memory cgroup"
        ) from None
    return _run(args, layouts)


def _run(args: argparse.Namespace, layouts: list[Any]) -> int:
    from paychaos.oom.report import render_html, summary_table, write_json
    from paychaos.oom.runner import RunSettings, TrafficPlan, run_all, stderr_progress

    explosion = args.bad_deploy_at is not None
    factor = args.traffic_factor if args.traffic_factor is not None else 1.0
    if args.dashboard_every is not None and not explosion:
        raise InvalidInput("--dashboard-every applies to the --bad-deploy-at run only")
    if args.until_kill and (not explosion or args.credits):
        raise InvalidInput(
            "--until-kill applies to the --bad-deploy-at run only (not --credits: its "
            "phases must run to the end to be compared)"
        )
    if args.sale_seconds is not None and not explosion:
        raise InvalidInput("--sale-seconds applies to the --bad-deploy-at run only")
    if args.credits:
        from paychaos.oom.credits import T3_CREDITS

        unknown = sorted({lay.instance.name for lay in layouts} - set(T3_CREDITS))
        if unknown:
            raise InvalidInput(
                f"--credits: no published CPU credit figures for {', '.join(unknown)} "
                f"(known: {', '.join(T3_CREDITS)})"
            )
        plan = TrafficPlan.credits(20.0 if args.quick else 30.0)
        if explosion and args.sale_seconds is not None:
            raise InvalidInput("--sale-seconds: the --credits run has its own two phases")
    elif explosion:
        plan = TrafficPlan.explosion(args.sale_seconds or (60.0 if args.quick else 90.0))
    else:
        plan = TrafficPlan.quick() if args.quick else TrafficPlan()
    if explosion and args.bad_deploy_at >= plan.duration_s:
        raise InvalidInput(
            f"--bad-deploy-at {args.bad_deploy_at:g}: must come before the sale ends "
            f"({plan.duration_s:g}s)"
        )
    settings = RunSettings(
        scale=args.scale,
        traffic_factor=factor,
        plan=plan,
        state_dir=args.out / "state",
        bad_deploy_at_s=args.bad_deploy_at,
        credits=args.credits,
        dashboard_every_s=args.dashboard_every,
        until_kill=args.until_kill,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    headline = headline_of(settings)
    print(f"oom-demo: {len(layouts)} layout(s); {headline}", file=sys.stderr)
    with _sigterm_as_ctrl_c():  # the stack stopped and the cgroup removed on SIGTERM too
        results = run_all(layouts, settings, progress=stderr_progress)
    notes = [
        headline,
        f"Modelled components saw {factor:g} x the span and log rates the load "
        "driver caused (--traffic-factor); real components saw only what was sent.",
        "Failed checkouts count only what the shop itself lost (no answer, 500, 503); the "
        "gateway simulator's own 502/504 are listed apart (they occur in every layout).",
    ]
    command = "paychaos " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    (args.out / "report.html").write_text(
        render_html(results, command=command, notes=notes, headline=headline)
    )
    write_json(results, args.out / "results.json", headline=headline)
    print(headline)
    print(summary_table(results))
    print(f"\nreport: {args.out / 'report.html'}")
    return 1 if any(r.error for r in results) else 0


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM interrupts the run like Ctrl-C (``finally`` stops the stack and removes the
    cgroup); Python's default would end the process with its children left running."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def headline_of(settings: Any) -> str:
    """What every output starts with: the scale and the multiplier, never left implicit."""
    scale = (
        "scale 1 (the instance's real memory)"
        if settings.scale == 1
        else f"SCALED ROOM: scale {settings.scale:g} (modelled footprints and the room around "
        "the real processes x scale; the traffic is not scaled)"
    )
    factor = (
        "traffic as really sent, no multiplier"
        if settings.traffic_factor == 1
        else f"MULTIPLIER: modelled components see {settings.traffic_factor:g} x the traffic sent"
    )
    if settings.bad_deploy_at_s is not None and not settings.credits:
        what = f"bad deploy (per-order label) at {settings.bad_deploy_at_s:g}s"
    elif settings.credits:
        rate = settings.plan.stages[0].rate_per_s
        what = (
            f"noisy neighbour: {rate:g} checkouts/s with t3 credits spent, full, full, spent "
            "(ABBA blocks)"
        )
        if settings.bad_deploy_at_s is not None:
            what += f", bad deploy (per-order label) at {settings.bad_deploy_at_s:g}s"
    else:
        what = "flash sale"
    sale = f"sale {settings.plan.duration_s:.0f}s per layout"
    if getattr(settings, "until_kill", False):
        sale = (
            f"sale until the first OOM kill, or the series of a killed layout (at most "
            f"{settings.plan.duration_s:.0f}s per layout)"
        )
    return f"{what}; {scale}; {factor}; {sale}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m paychaos.cli.oom oom-demo ...`` (same as ``paychaos oom-demo``)."""
    from paychaos.cli import main as paychaos_main

    return paychaos_main(argv)


if __name__ == "__main__":
    sys.exit(main())
