"""The cardinality explosion end to end: the bad deploy gets the REAL Prometheus OOM-killed
by the kernel on A@t3.medium and not on A@t3.large, at the traffic really sent (no multiplier).

Independent of how fast this machine sends (`--until-kill`): the medium run lasts until its
first kernel OOM kill (plus 12 s to watch the blind time and the alerts), and the large run
is then driven until its Prometheus holds at least the head series the medium's peaked at —
the same series count, whatever rate got there. Both are bounded: `--sale-seconds 120` per
layout. A slow machine makes the runs longer, not the claim weaker.

Scale 0.05, stated in every output's headline: at scale 1 no kill comes within minutes
(README); at 0.05 the real Prometheus is the largest process in the medium's room."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cannot_run import skip_unless_ci
from tests.oom.test_oom_demo import REPO, _assert_nothing_left, _skip_reason

pytestmark = [
    pytest.mark.integration,
    skip_unless_ci(_skip_reason()),
]

SALE_BOUND_S = 120


def _kmsg_readable() -> bool:
    try:
        os.close(os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK))
    except OSError:
        return False
    return True


def test_bad_deploy_oom_kills_prometheus_on_medium_not_on_large_at_the_same_series(
    tmp_path: Path,
) -> None:
    out = tmp_path / "explosion"
    argv = [
        sys.executable, "-m", "paychaos.cli.oom", "oom-demo", "--quick", "--scale", "0.05",
        "--layout", "A@t3.medium", "--layout", "A@t3.large", "--bad-deploy-at", "8",
        "--until-kill", "--sale-seconds", str(SALE_BOUND_S), "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # two layouts: each at most its sale bound, plus start, settle, watch and stop
        stdout, stderr = proc.communicate(timeout=2 * (SALE_BOUND_S + 90))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    assert proc.returncode == 0, stderr[-3000:]
    headline = stdout.splitlines()[0]
    assert headline.startswith("bad deploy (per-order label) at 8s; SCALED ROOM: scale 0.05")
    assert "no multiplier" in headline and "until the first OOM kill" in headline
    records = json.loads((out / "results.json").read_text())
    assert all(r["headline"] == headline for r in records)
    results = {r["key"]: r for r in records}
    medium, large = results["A@t3.medium"], results["A@t3.large"]

    # medium: the kernel's own counter (memory.events / memory.oom_control) counted a kill,
    # and the first victim is the real Prometheus, named by the kernel's log when readable
    assert medium["oom_kills"] >= 1, medium["verdict"]
    assert medium["ended_by"].startswith("first kernel OOM kill"), medium["ended_by"]
    first = medium["kills"][0]
    assert first["component"] == "prometheus", medium["kills"]
    if _kmsg_readable():
        assert first["named_by"] == "kernel log", medium["kills"]
        assert "(prometheus)" in first["evidence"], first
        assert any(task == "prometheus" for _t, task, _pid, _c in medium["kernel_kills"])
    else:
        assert first["named_by"] == "SIGKILL exit", medium["kills"]
    # blind time per signal, and the alerts that could not fire while it was down
    assert medium["blind_by_signal"]["metrics"] > 0
    assert medium["blind_by_signal"]["alerts"] > 0
    assert any(line.startswith("ServiceDown (job prometheus)") for line in medium["could_not_fire"])
    assert "A@t3.medium: OOM-KILLED: the kernel killed prometheus" in stdout
    assert "alerts that could not fire while the monitoring was blind:" in stdout
    assert "blind: metrics" in stdout

    # large: driven to at least the series the medium peaked at, and not killed
    target = medium["series_target"] or max(n for _t, n in medium["head_series"])
    assert large["series_target"] == target, (large["series_target"], target)
    large_peak = max(n for _t, n in large["head_series"])
    assert large_peak >= target, (large_peak, target, large["ended_by"])
    assert large["ended_by"].startswith("head series"), large["ended_by"]
    assert large["oom_kills"] == 0, large["verdict"]
    assert large["verdict"].startswith("NOT KILLED") and "headroom left" in large["verdict"]
    assert "(reached the" in large["verdict"]

    for r in (medium, large):
        assert r["bad_deploy_t"] is not None
        assert max(n for _t, n in r["head_series"]) > 5000  # grew with the traffic
        assert r["pressure"]["after_sent"] > 0
    _assert_nothing_left(out, proc.pid)
