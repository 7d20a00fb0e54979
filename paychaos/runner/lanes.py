"""Run a suite in lanes: several fresh built-in stacks side by side, one child run each.

A suite on one stack runs its scenarios one after the other, each with its
settle period; fifteen scenarios take twenty-odd minutes. Lanes split the
scenarios over ``N`` child runs (``paychaos run <its scenarios> --fresh``),
each on a stack of its own, and gather their records into one suite:

- the split balances the lanes by each scenario's planned length (longest
  first onto the least-loaded lane); inside a lane the scenarios keep their
  order;
- the lanes start one at a time (the next once the previous lane's stack is
  up), so the stacks do not race for ports or CPU while starting;
- each child's stderr is shown line by line with its lane in front, and all
  its output is kept in ``lane-N.log`` beside the reports;
- a stop (Ctrl-C, SIGTERM) is passed to every child by its pid, which reverts
  its faults and stops its stack; a child that has not ended 150 s later is
  killed (its faults still expire by their TTL);
- a lane that ended without a report gives an ``error`` record for each of its
  scenarios, naming the exit code and the log.

The stacks share the machine: detection times are measured with the other
lanes' stacks and traffic running, and the report says how many lanes ran.

Example::

    plans = split(loaded, 2)
    records = run_lanes(plans, command, work_dir, stop=stop, say=print)
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from paychaos.contracts.scenario import Scenario
from paychaos.report.model import RunRecord
from paychaos.runner.suite import skipped_record
from paychaos.scenario.load import LoadedScenario

STOP_GRACE_S = 150.0
START_WAIT_S = 240.0
STARTED_MARK = "target "
"""The child prints ``target NAME (started for this run)`` once its stack is up."""


def planned_s(sc: Scenario) -> float:
    """A scenario's planned length: its settle time, traffic or faults, and recovery."""
    fault_end = max((f.at_s + f.duration_s for f in sc.faults), default=0.0)
    return sc.settle_s + max(sc.traffic.duration_s, fault_end + sc.recovery.within_s)


@dataclass
class LanePlan:
    """The scenarios one lane runs, in suite order."""

    index: int
    scenarios: list[LoadedScenario] = field(default_factory=list)

    @property
    def planned_s(self) -> float:
        return sum(planned_s(item.scenario) for item in self.scenarios)


def split(scenarios: Sequence[LoadedScenario], lanes: int) -> list[LanePlan]:
    """``scenarios`` over at most ``lanes`` lanes, balanced by planned length (no empty lane)."""
    if lanes < 1:
        raise ValueError("lanes must be at least 1")
    plans = [LanePlan(i + 1) for i in range(min(lanes, len(scenarios)))]
    order = {id(item): n for n, item in enumerate(scenarios)}
    for item in sorted(scenarios, key=lambda it: -planned_s(it.scenario)):
        min(plans, key=lambda p: p.planned_s).scenarios.append(item)
    for plan in plans:
        plan.scenarios.sort(key=lambda it: order[id(it)])
    return plans


@dataclass
class _Lane:
    plan: LanePlan
    reports_dir: Path
    log_path: Path
    proc: subprocess.Popen[str] | None = None
    started: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None


def _pump(lane: _Lane, stream: IO[str], log: IO[str], say: Callable[[str], None]) -> None:
    for line in stream:
        log.write(line)
        log.flush()
        text = line.rstrip("\n")
        if text.startswith(STARTED_MARK):
            lane.started.set()
        say(f"[lane {lane.plan.index}] {text}")
    lane.started.set()  # ended: do not hold the next lane back


def _read_records(lane: _Lane) -> dict[str, RunRecord]:
    reports = sorted(lane.reports_dir.glob("*/report.json"))
    if not reports:
        return {}
    document = json.loads(reports[-1].read_text())
    records = [RunRecord.from_dict(raw) for raw in document.get("runs", [])]
    return {r.source: r for r in records}


def _stop(lanes: Sequence[_Lane], say: Callable[[str], None]) -> None:
    for lane in lanes:
        if lane.proc is not None and lane.proc.poll() is None:
            lane.proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_S
    for lane in lanes:
        if lane.proc is None:
            continue
        try:
            lane.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"[lane {lane.plan.index}] did not stop within {STOP_GRACE_S:g}s: killed")
            lane.proc.kill()
            lane.proc.wait()


def run_lanes(
    plans: Sequence[LanePlan],
    command: Callable[[LanePlan, Path], list[str]],
    work_dir: Path,
    *,
    stop: threading.Event,
    say: Callable[[str], None],
) -> list[RunRecord]:
    """Run every lane's child (``command(plan, reports_dir)``); their records in suite order.

    Each lane's reports go to ``work_dir/lane-N/`` and its output to
    ``work_dir/lane-N.log``.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    lanes = [
        _Lane(plan, work_dir / f"lane-{plan.index}", work_dir / f"lane-{plan.index}.log")
        for plan in plans
    ]
    logs: list[IO[str]] = []
    try:
        for lane in lanes:
            if stop.is_set():
                break
            names = ", ".join(item.scenario.name for item in lane.plan.scenarios)
            say(f"[lane {lane.plan.index}] {len(lane.plan.scenarios)} scenario(s): {names}")
            log = lane.log_path.open("w")
            logs.append(log)
            lane.proc = subprocess.Popen(
                command(lane.plan, lane.reports_dir),
                stdout=log,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                bufsize=1,
                start_new_session=True,  # a terminal's Ctrl-C reaches the children through us
            )
            assert lane.proc.stderr is not None
            lane.reader = threading.Thread(
                target=_pump, args=(lane, lane.proc.stderr, log, say), daemon=True
            )
            lane.reader.start()
            waited = time.monotonic()
            while not lane.started.wait(1.0):
                if stop.is_set() or time.monotonic() - waited > START_WAIT_S:
                    break
        while any(lane.proc is not None and lane.proc.poll() is None for lane in lanes):
            if stop.is_set():
                _stop(lanes, say)
                break
            time.sleep(0.5)
    finally:
        _stop(lanes, say)
        for lane in lanes:
            if lane.reader is not None:
                lane.reader.join(timeout=5.0)
            if lane.proc is not None and lane.proc.stderr is not None:
                lane.proc.stderr.close()
        for opened in logs:
            opened.close()
    by_source: dict[str, RunRecord] = {}
    missing: list[RunRecord] = []
    for lane in lanes:
        found = _read_records(lane)
        by_source.update(found)
        code = lane.proc.returncode if lane.proc is not None else None
        for item in lane.plan.scenarios:
            if item.source in found:
                continue
            if lane.proc is None or stop.is_set():
                continue  # never started, or stopped before it ran: not run
            missing.append(
                skipped_record(
                    item,
                    f"lane {lane.plan.index} ended (exit code {code}) without running it; "
                    f"see {lane.log_path}",
                    status="error",
                )
            )
    for rec in missing:
        by_source[rec.source] = rec
    return [
        by_source[item.source]
        for plan in plans
        for item in plan.scenarios
        if item.source in by_source
    ]
