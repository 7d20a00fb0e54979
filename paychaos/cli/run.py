"""``paychaos run``, ``paychaos validate`` and ``paychaos history``.

::

    paychaos validate scenarios/            # exit 2 naming file:line: field on a bad file
    paychaos run scenarios/db-latency.yaml  # start a stack (or --reuse the `paychaos up` one)
    paychaos run scenarios/ --reports-dir reports
    paychaos run scenarios/db-latency.yaml --target docker          # the Docker stack
    paychaos run scenarios/db-latency.yaml --target targets/staging.yaml
    paychaos history --reports-dir reports --plot reports/trend.png

Before anything starts, every scenario is checked against the target's
capabilities: one scenario the target cannot run is refused (exit 2, naming
the missing capability); in a suite of several, it is *skipped* with that
reason in every report, and the others run.

A run ends by printing each scenario's expectations, the fault-by-signal
matrix (:mod:`paychaos.report.matrix`) and the wall time of the whole command.

Exit codes: 0 every expectation held, 1 one did not (or the run failed),
2 invalid input (nothing was started or injected), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from paychaos.contracts.errors import InvalidInput, Unsupported

Handler = Callable[[argparse.Namespace], int]
MAX_LANES = 4


def register(subparsers: Any) -> dict[str, Handler]:
    from paychaos.cli import add_target_option

    run = subparsers.add_parser("run", help="run scenarios: traffic + faults + expectations")
    run.add_argument("paths", nargs="+", type=Path, help="scenario files or directories")
    add_target_option(run)
    run.add_argument(
        "--reuse",
        action="store_true",
        help="use the stack `paychaos up` runs (default: reuse it if running, else start one)",
    )
    run.add_argument("--fresh", action="store_true", help="always start a new stack for the run")
    run.add_argument("--reports-dir", type=Path, default=Path("reports"))
    run.add_argument("--junit", type=Path, help="JUnit XML path (default <reports>/junit.xml)")
    run.add_argument("--scrape-interval-s", type=float, default=1.0, help="for a started stack")
    run.add_argument(
        "--app",
        choices=("python", "nestjs"),
        default="python",
        help="the payment API of an embedded stack started for the run: paychaos' own "
        "(python) or the seed's NestJS service (nestjs; build it with `make nestjs`)",
    )
    run.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also allow load and faults to HOST (beside the target's allow_hosts)",
    )
    run.add_argument(
        "--lanes",
        type=int,
        default=1,
        metavar="N",
        help="with --fresh: split the scenarios over N fresh stacks side by side (default 1)",
    )
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--no-history", action="store_true", help="do not append to the history")

    validate = subparsers.add_parser("validate", help="check scenario files; touch nothing")
    validate.add_argument("paths", nargs="+", type=Path)

    history = subparsers.add_parser(
        "history", help="past runs: table, fault-by-signal matrix across runs, time-to-detect trend"
    )
    history.add_argument("--reports-dir", type=Path, default=Path("reports"))
    history.add_argument("--scenario", help="only this scenario")
    history.add_argument("--plot", type=Path, help="trend PNG (default <reports>/trend.png)")
    return {"run": _cmd_run, "validate": _cmd_validate, "history": _cmd_history}


def _cmd_validate(args: argparse.Namespace) -> int:
    from paychaos.scenario.load import load_all

    loaded = load_all(args.paths)
    for item in loaded:
        sc = item.scenario
        print(
            f"ok  {item.source}: {sc.name} ({len(sc.faults)} fault(s), "
            f"{len(sc.expectations)} expectation(s), {sc.traffic.duration_s:g}s)"
        )
    return 0


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (the runner reverts and records *interrupted*)."""
    previous: dict[signal.Signals, Any] = {}

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: the finally blocks still revert
        stop.set()
        print(f"\n{signal.Signals(signum).name}: stopping, reverting faults ...", file=sys.stderr)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _cmd_run(args: argparse.Namespace) -> int:
    began = time.monotonic()
    from paychaos.report.history import append_history
    from paychaos.report.json_report import write_json
    from paychaos.report.model import RunRecord
    from paychaos.runner.actors import run_catalog
    from paychaos.runner.needs import refusal, unmet
    from paychaos.runner.progress import Progress
    from paychaos.runner.runner import RunOptions
    from paychaos.runner.suite import run_suite, skipped_record
    from paychaos.scenario.load import load_all
    from paychaos.targets.resolve import Start, StartOptions, is_builtin, plan_target

    if args.reuse and args.fresh:
        raise InvalidInput("--reuse and --fresh exclude each other")
    if args.scrape_interval_s <= 0:
        raise InvalidInput("--scrape-interval-s must be positive")
    if not 1 <= args.lanes <= MAX_LANES:
        raise InvalidInput(f"--lanes must be between 1 and {MAX_LANES}, got {args.lanes}")
    if args.lanes > 1 and not (args.fresh and is_builtin(args.target)):
        raise InvalidInput(
            "--lanes needs a stack per lane: use it with --fresh on a built-in stack "
            "(embedded or docker), not with --reuse or a target file"
        )
    if args.app != "python":
        if args.reuse or args.target not in (None, "embedded"):
            raise InvalidInput(
                f"--app {args.app} chooses the API of an embedded stack started for the run; "
                "not with --reuse (the running stack's API is the one it was started with) "
                "or another --target"
            )
        from paychaos.stack.nestjs_app import require_build

        require_build()  # before anything starts
    loaded = load_all(args.paths)  # validate everything before anything starts
    if args.lanes > 1 and len(loaded) > 1:
        return _run_in_lanes(args, loaded, began)
    state_dir: Path = args.state_dir
    stop = threading.Event()
    progress = None if args.no_progress else Progress(sys.stderr)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir: Path = args.reports_dir / stamp
    start: Start = "never" if args.reuse else "always" if args.fresh else "if-missing"
    if args.app != "python":
        start = "always"  # a running stack may run another API: never reuse it silently
    if not is_builtin(args.target) and (args.reuse or args.fresh):
        raise InvalidInput("--reuse and --fresh are for the built-in stacks, not a target file")
    options = StartOptions(
        scrape_interval_s=args.scrape_interval_s,
        app=args.app,
        say=lambda text: print(text, file=sys.stderr),
    )
    plan = plan_target(
        args.target, state_dir, start=start, options=options, allow_hosts=tuple(args.allow_host)
    )
    catalog = run_catalog()
    gaps = {item.source: unmet(item, plan.target, catalog) for item in loaded}
    if all(gaps.values()):
        plan.discard()  # refused before anything starts
        if len(loaded) == 1:
            raise refusal(loaded[0], plan.target, gaps[loaded[0].source])
        raise Unsupported(
            "\n".join(str(refusal(item, plan.target, gaps[item.source])) for item in loaded)
        )
    with _stop_on_signals(stop), contextlib.ExitStack() as cleanup:
        session = plan.open()
        cleanup.callback(session.close)
        how = "started for this run" if session.owned else "running"
        print(f"target {session.target.name} ({how})", file=sys.stderr)
        records: list[RunRecord] = []

        def on_record(record: RunRecord) -> None:
            records.append(record)
            write_json(records, out_dir / "report.json")
            if not args.no_history:
                append_history(args.reports_dir, record)
            print(f"{record.scenario}: {record.status} {record.reason}", file=sys.stderr)

        opts = RunOptions(stop=stop, progress=progress, catalog=catalog)
        runnable = []
        for item in loaded:
            if gaps[item.source]:
                on_record(skipped_record(item, str(refusal(item, plan.target, gaps[item.source]))))
            else:
                runnable.append(item)
        run_suite(runnable, session, opts, on_record=on_record, first_settle_s=0.0)
    return _finish(args, records, len(loaded), out_dir, began, stop.is_set())


def _finish(
    args: argparse.Namespace,
    records: list[Any],
    planned: int,
    out_dir: Path,
    began: float,
    stopped: bool,
    lanes: int = 1,
) -> int:
    """Reports, summary, matrix and wall time of a run; its exit code."""
    from paychaos.report.html import write_html
    from paychaos.report.json_report import write_json
    from paychaos.report.junit import write_junit
    from paychaos.report.matrix import build_matrix, render_text
    from paychaos.report.model import suite_status

    if records:
        write_json(records, out_dir / "report.json")
        write_junit(records, args.junit or out_dir / "junit.xml")
        write_html(records, out_dir / "report.html")
        print(f"reports in {out_dir}/ (report.json, junit.xml, report.html)", file=sys.stderr)
    _print_summary(records)
    if records:
        print()
        print(render_text(build_matrix(records)))
    wall = time.monotonic() - began
    counts = ", ".join(
        f"{sum(1 for r in records if r.status == s)} {s}"
        for s in dict.fromkeys(r.status for r in records)
    )
    how = f"in {lanes} lanes side by side, " if lanes > 1 else ""
    print(
        f"\nsuite wall time: {wall:.0f} s ({wall / 60:.1f} min) for {len(records)} of "
        f"{planned} scenario(s){': ' + counts if counts else ''}; {how}"
        "stack start and stop included"
    )
    status = suite_status(records) if records else "interrupted"
    if status == "interrupted" or stopped:
        return 130
    return 0 if status == "passed" and len(records) == planned else 1


def _run_in_lanes(args: argparse.Namespace, loaded: list[Any], began: float) -> int:
    """The suite split over ``--lanes`` child runs, each on a fresh stack of its own."""
    from paychaos.report.history import append_history
    from paychaos.runner.lanes import LanePlan, run_lanes, split

    stop = threading.Event()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir: Path = args.reports_dir / stamp
    plans = split(loaded, args.lanes)

    def command(plan: LanePlan, reports_dir: Path) -> list[str]:
        argv = [sys.executable, "-m", "paychaos.cli"]
        if getattr(args, "target", None):
            argv += ["--target", args.target]
        argv += ["run", *(item.source for item in plan.scenarios), "--fresh", "--no-progress"]
        argv += ["--no-history", "--reports-dir", str(reports_dir)]
        argv += ["--scrape-interval-s", str(args.scrape_interval_s), "--app", args.app]
        for host in args.allow_host:
            argv += ["--allow-host", host]
        return argv

    print(
        f"{len(loaded)} scenarios in {len(plans)} lanes, each on a fresh stack of its own "
        f"(lane logs in {out_dir}/)",
        file=sys.stderr,
    )
    with _stop_on_signals(stop):
        records = run_lanes(
            plans, command, out_dir, stop=stop, say=lambda text: print(text, file=sys.stderr)
        )
    position = {item.source: n for n, item in enumerate(loaded)}
    records.sort(key=lambda r: position.get(r.source, len(position)))
    if not args.no_history:
        for record in records:
            append_history(args.reports_dir, record)
    return _finish(args, records, len(loaded), out_dir, began, stop.is_set(), len(plans))


def _print_summary(records: list[Any]) -> None:
    for rec in records:
        print(f"{rec.scenario:<24} {rec.status}")
        for exp in rec.expectations:
            ttd = f"{exp.detected_s:5.1f}s" if exp.detected_s is not None else "   — "
            floor = f"(floor {exp.floor_s:.1f}s)" if exp.floor_s is not None else ""
            print(f"  {exp.status:<8} {ttd} {floor:<14} {exp.name}")
            if exp.type == "culprit" and exp.detail:  # the answer: who it was
                print(f"  {'':<8} {'':<6} {'':<14} {exp.detail}")
        if rec.recovered_s is not None:
            floor = f" (floor {rec.recovery_floor_s:.1f}s)" if rec.recovery_floor_s else ""
            print(f"  recovered {rec.recovered_s:.1f}s after the last revert{floor}")
        for late in rec.late_firings():
            print(
                f"  late firing: {late.title} first fired {late.after_recovery_s:.1f}s after recovery"
            )


def _cmd_history(args: argparse.Namespace) -> int:
    from paychaos.report.history import history_matrix, history_table, plot_trends, read_history

    entries = read_history(args.reports_dir)
    if not entries:
        print(f"no history in {args.reports_dir} (run: paychaos run scenarios/)")
        return 1
    print(history_table(entries, args.scenario))
    print()
    print(history_matrix(entries, args.scenario))
    path = plot_trends(
        [e for e in entries if not args.scenario or e.scenario == args.scenario],
        args.plot or args.reports_dir / "trend.png",
    )
    print(f"\ntrend plot: {path}")
    return 0
