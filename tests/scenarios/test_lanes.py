"""Suite lanes: the split, the children's records gathered in suite order, a lane that fails,
a stop passed to every child, and the flags refused before anything starts.

The children here are small Python scripts standing in for ``paychaos run``: they
print the line a real child prints once its stack is up, write a report like a
real child's, or misbehave. The real thing runs in ``make suite`` (``--lanes 2``).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from paychaos.cli import main
from paychaos.report.json_report import write_json
from paychaos.report.model import RunRecord
from paychaos.runner.lanes import LanePlan, planned_s, run_lanes, split
from paychaos.scenario.load import LoadedScenario, load_all
from tests.scenarios.test_run_reports import _record

REPO = Path(__file__).resolve().parents[2]
BUILTIN = load_all([REPO / "scenarios"])


def test_split_balances_lanes_by_planned_length_and_keeps_suite_order() -> None:
    plans = split(BUILTIN, 2)
    assert len(plans) == 2
    assert sorted(i.source for p in plans for i in p.scenarios) == sorted(i.source for i in BUILTIN)
    longest = max(planned_s(i.scenario) for i in BUILTIN)
    assert abs(plans[0].planned_s - plans[1].planned_s) <= longest
    order = [i.source for i in BUILTIN]
    for plan in plans:
        mine = [i.source for i in plan.scenarios]
        assert mine == sorted(mine, key=order.index)
    assert len(split(BUILTIN[:1], 3)) == 1  # no empty lane
    with pytest.raises(ValueError):
        split(BUILTIN, 0)


def test_record_survives_its_json_round_trip() -> None:
    rec = _record()
    back = RunRecord.from_dict(json.loads(rec.to_json()))
    assert back == rec
    assert back.expectations[0].over_floor_s == rec.expectations[0].over_floor_s


CHILD = """
import json, sys, time
from pathlib import Path
from paychaos.report.json_report import write_json
from paychaos.report.model import RunRecord
mode, out, sources = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
if mode == "hang":
    import signal
    signal.signal(signal.SIGINT, lambda *_: (print("reverting", file=sys.stderr), sys.exit(130)))
print("starting an embedded stack for this run ...", file=sys.stderr, flush=True)
print("target embedded (started for this run)", file=sys.stderr, flush=True)
if mode == "crash":
    sys.exit(3)
if mode == "hang":
    time.sleep(60)
records = []
for src in sources:
    rec = RunRecord(Path(src).stem, "d", src, status="passed", started_unix_s=time.time())
    rec.ended_unix_s = rec.started_unix_s + 1
    records.append(rec)
    print(f"{rec.scenario}: passed", file=sys.stderr, flush=True)
write_json(records, out / "20260101-000000" / "report.json")
"""


def _command(tmp_path: Path, modes: dict[int, str]) -> object:
    script = tmp_path / "child.py"
    script.write_text(CHILD)

    def command(plan: LanePlan, reports_dir: Path) -> list[str]:
        mode = modes.get(plan.index, "ok")
        return [sys.executable, str(script), mode, str(reports_dir)] + [
            i.source for i in plan.scenarios
        ]

    return command


def _plans(items: list[LoadedScenario], lanes: int) -> list[LanePlan]:
    return split(items, lanes)


def test_children_records_come_back_and_their_lines_are_shown_per_lane(tmp_path: Path) -> None:
    lines: list[str] = []
    plans = _plans(BUILTIN, 2)
    records = run_lanes(
        plans,
        _command(tmp_path, {}),  # type: ignore[arg-type]
        tmp_path / "out",
        stop=threading.Event(),
        say=lines.append,
    )
    assert sorted(r.source for r in records) == sorted(i.source for i in BUILTIN)
    assert all(r.status == "passed" for r in records)
    assert any(line.startswith("[lane 2] target embedded") for line in lines)
    assert (tmp_path / "out" / "lane-1.log").read_text().count(": passed") == len(
        plans[0].scenarios
    )


def test_a_lane_that_dies_gives_error_records_naming_its_exit_code_and_log(
    tmp_path: Path,
) -> None:
    plans = _plans(BUILTIN, 2)
    records = run_lanes(
        plans,
        _command(tmp_path, {2: "crash"}),  # type: ignore[arg-type]
        tmp_path / "out",
        stop=threading.Event(),
        say=lambda _t: None,
    )
    crashed = {i.source for i in plans[1].scenarios}
    assert {r.source for r in records} == {i.source for i in BUILTIN}
    for rec in records:
        if rec.source in crashed:
            assert rec.status == "error"
            assert "exit code 3" in rec.reason and "lane-2.log" in rec.reason
        else:
            assert rec.status == "passed"


def test_a_stop_reaches_every_child_by_its_pid(tmp_path: Path) -> None:
    stop = threading.Event()
    lines: list[str] = []

    def say(line: str) -> None:  # the stop comes once both children are up
        lines.append(line)
        if sum("target embedded" in seen for seen in lines) == 2:
            threading.Timer(0.5, stop.set).start()

    began = time.monotonic()
    records = run_lanes(
        _plans(BUILTIN, 2),
        _command(tmp_path, {1: "hang", 2: "hang"}),  # type: ignore[arg-type]
        tmp_path / "out",
        stop=stop,
        say=say,
    )
    assert time.monotonic() - began < 30  # the children ended on SIGINT, not by the 60 s sleep
    assert records == []
    assert sum("reverting" in line for line in lines) == 2


def test_lane_flags_are_checked_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenarios = str(REPO / "scenarios")
    assert main(["run", scenarios, "--lanes", "0"]) == 2
    assert "--lanes must be between 1 and 4, got 0" in capsys.readouterr().err
    assert main(["run", scenarios, "--lanes", "2"]) == 2  # not --fresh
    assert "--lanes needs a stack per lane" in capsys.readouterr().err
    target = tmp_path / "t.yaml"
    assert main(["run", scenarios, "--lanes", "2", "--fresh", "--target", str(target)]) == 2
    assert not (tmp_path / "reports").exists()


def test_write_json_of_a_child_is_what_the_parent_reads(tmp_path: Path) -> None:
    rec = _record()
    write_json([rec], tmp_path / "x" / "report.json")
    doc = json.loads((tmp_path / "x" / "report.json").read_text())
    assert RunRecord.from_dict(doc["runs"][0]) == rec
