"""Time to detect, per built-in scenario, next to the floor the monitoring allows.

Runs the scenarios (default: every ``scenarios/*.yaml``) on one fresh embedded
stack (1 s scrape/evaluation interval) and prints the fault-by-signal matrix
(:mod:`paychaos.report.matrix`) with the time to detect minus its floor in
every cell, then, for every expectation that waits for a signal, the measured
time to detect from the fault's injection, its floor (see
:mod:`paychaos.runner.floors`) and the difference; the aim is every detection
within 5 s of its floor (``SLOW_OVER_FLOOR_S``). ``--from-report report.json``
prints the same from an earlier ``paychaos run`` instead.

    .venv/bin/python bench/bench_detection.py
    .venv/bin/python bench/bench_detection.py scenarios/db-latency.yaml
    .venv/bin/python bench/bench_detection.py --from-report reports/<stamp>/report.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from paychaos.report.matrix import SLOW_OVER_FLOOR_S, Matrix, render_text  # noqa: E402

AIM_S = SLOW_OVER_FLOOR_S


def _rows_from_runs(runs: list[dict[str, Any]]) -> list[tuple[str, str, Any, Any, str]]:
    rows = []
    for run in runs:
        for exp in run["expectations"]:
            if exp["mode"] != "eventually":
                continue
            rows.append(
                (run["scenario"], exp["name"], exp["detected_s"], exp["floor_s"], exp["status"])
            )
        if run.get("recovered_s") is not None:
            rows.append(
                (
                    run["scenario"],
                    "recovery (steady state back)",
                    run["recovered_s"],
                    run.get("recovery_floor_s"),
                    "passed",
                )
            )
    return rows


def print_table(runs: list[dict[str, Any]]) -> int:
    header = (
        f"{'scenario':<24} {'expectation':<58} {'TTD s':>6} {'floor s':>7} {'over s':>6}  verdict"
    )
    print(header)
    print("-" * len(header))
    misses = 0
    for scenario, name, ttd, floor, status in _rows_from_runs(runs):
        over = ttd - floor if ttd is not None and floor is not None else None
        recovery = name.startswith("recovery")
        if status != "passed":
            verdict = "NOT DETECTED"
            misses += 1
        elif recovery:
            verdict = "(recovery)"
        elif over is None:
            verdict = "-"
        elif over <= AIM_S:
            verdict = f"within {AIM_S:g}s"
        else:
            verdict = f"slow (+{over - AIM_S:.1f}s over the aim)"
            misses += 1
        fmt = lambda v: f"{v:6.1f}" if v is not None else "     —"  # noqa: E731
        print(f"{scenario:<24} {name[:58]:<58} {fmt(ttd)} {fmt(floor):>7} {fmt(over)}  {verdict}")
    for run in runs:
        print(f"{run['scenario']:<24} run {run['status']} in {run.get('duration_s', 0):.0f}s")
    return misses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[REPO / "scenarios"])
    parser.add_argument("--from-report", type=Path)
    args = parser.parse_args(argv)
    if args.from_report:
        doc = json.loads(args.from_report.read_text())
        runs = doc["runs"]
        if "matrix" not in doc:
            print(f"{args.from_report}: no matrix in this report (an older paychaos wrote it)")
            return 2
        matrix = Matrix.from_dict(doc["matrix"])
    else:
        from paychaos.report.matrix import build_matrix
        from paychaos.runner.progress import Progress
        from paychaos.runner.runner import RunOptions
        from paychaos.runner.suite import run_suite
        from paychaos.scenario.load import load_all
        from paychaos.targets.resolve import StartOptions, plan_target

        loaded = load_all(args.paths)
        plan = plan_target("embedded", Path(".paychaos"), start="always", options=StartOptions())
        with plan.open() as session:
            records = run_suite(loaded, session, RunOptions(progress=Progress(sys.stderr)))
        runs = [r.to_dict() for r in records]
        matrix = build_matrix(records)
    print(render_text(matrix, over=True))
    print()
    misses = print_table(runs)
    print(f"\n{misses} detection(s) missed or more than {AIM_S:g}s over their floor")
    print("floors: alert = for + evaluation interval + group_wait (+ time Prometheus was blind);")
    print("metric = scrape + for_s; trace/log = OTLP batch delay; RUM = push interval;")
    print("recovery = scrape + longest window of the after-probes (paychaos/runner/floors.py)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
