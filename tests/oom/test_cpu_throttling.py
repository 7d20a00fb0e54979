"""CPU throttling: read from cgroup ``cpu.stat`` (v1, v2, fake trees and the real kernel),
exported by the instance collector only where a quota exists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from paychaos.stack.cgroups import (
    CgroupInfo,
    CgroupUnavailable,
    CpuThrottling,
    MemoryCgroup,
    detect,
    own_cpu_quota_group,
    read_cpu_throttling,
)
from paychaos.stack.instance import InstanceCollector
from tests.cannot_run import cannot_run, skip_unless_ci

MIB = 2**20


class _Probe:
    def __init__(self, throttling: CpuThrottling | None) -> None:
        self.throttling = throttling

    def memory_used_bytes(self) -> int:
        return 1

    def memory_limit_bytes(self) -> int:
        return 2

    def oom_kills(self) -> int:
        return 0

    def cpu_seconds(self) -> float:
        return 0.5

    def cpu_throttling(self) -> CpuThrottling | None:
        return self.throttling


class _NoThrottlingProbe:
    def memory_used_bytes(self) -> int:
        return 1

    def memory_limit_bytes(self) -> int:
        return 2

    def oom_kills(self) -> int:
        return 0

    def cpu_seconds(self) -> float:
        return 0.5


def _exported(probe: object) -> dict[str, float]:
    collector = InstanceCollector(probe, lambda: [])  # type: ignore[arg-type]
    return {s.name: s.value for m in collector.collect() for s in m.samples}


def test_the_exporter_adds_throttling_counters_only_with_a_quota() -> None:
    quota = _exported(_Probe(CpuThrottling(120, 30, 2.5)))
    assert quota["instance_cpu_periods_total"] == 120
    assert quota["instance_cpu_throttled_periods_total"] == 30
    assert quota["instance_cpu_throttled_seconds_total"] == 2.5
    for probe in (_Probe(None), _NoThrottlingProbe()):
        names = _exported(probe)
        assert "instance_cpu_seconds_total" in names
        assert not any("throttled" in name or "periods" in name for name in names)


def test_cpu_stat_v1_and_v2(tmp_path: Path) -> None:
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "cpu.stat").write_text(
        "nr_periods 40\nnr_throttled 12\nthrottled_time 1500000000\nnr_bursts 0\n"
    )
    assert read_cpu_throttling(v1, 1) == CpuThrottling(40, 12, 1.5)
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.stat").write_text(
        "usage_usec 900\nuser_usec 600\nsystem_usec 300\n"
        "nr_periods 8\nnr_throttled 2\nthrottled_usec 250000\n"
    )
    assert read_cpu_throttling(v2, 2) == CpuThrottling(8, 2, 0.25)


def test_own_quota_group_v2_walks_up_to_the_group_with_the_quota(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    leaf = root / "system.slice" / "shop.service"
    leaf.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu memory\n")
    (leaf / "cpu.max").write_text("max 100000\n")
    (leaf.parent / "cpu.max").write_text("150000 100000\n")
    (leaf.parent / "cpu.stat").write_text("nr_periods 5\nnr_throttled 1\nthrottled_usec 10\n")
    proc = tmp_path / "self-cgroup"
    proc.write_text("0::/system.slice/shop.service\n")
    group = own_cpu_quota_group(root, proc)
    assert group is not None and group.path == leaf.parent and group.version == 2
    assert group.cpu_throttling() == CpuThrottling(5, 1, 1e-5)
    (leaf.parent / "cpu.max").write_text("max 100000\n")
    assert own_cpu_quota_group(root, proc) is None  # no quota anywhere: nothing throttles


def test_own_quota_group_v1_in_a_container(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    cpu = root / "cpu,cpuacct"
    cpu.mkdir(parents=True)
    (cpu / "cpu.cfs_quota_us").write_text("200000\n")  # docker run --cpus 2
    (cpu / "cpu.stat").write_text("nr_periods 3\nnr_throttled 0\nthrottled_time 0\n")
    proc = tmp_path / "self-cgroup"
    # the path names the host's view; inside the container the mount is the group itself
    proc.write_text("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/\n")
    group = own_cpu_quota_group(root, proc)
    assert group is not None and group.path == cpu and group.version == 1
    (cpu / "cpu.cfs_quota_us").write_text("-1\n")
    assert own_cpu_quota_group(root, proc) is None
    assert own_cpu_quota_group(root, tmp_path / "missing") is None


def test_a_fake_group_without_quota_reports_nothing(tmp_path: Path) -> None:
    root = tmp_path / "v2"
    group_dir = root / "paychaos-x-1"
    group_dir.mkdir(parents=True)
    (group_dir / "cpu.max").write_text("max 100000\n")
    (group_dir / "cpu.stat").write_text("nr_periods 0\nnr_throttled 0\nthrottled_usec 0\n")
    group = MemoryCgroup(CgroupInfo(2, root, root), "paychaos-x-1", owned=False)
    assert group.cpu_throttling() is None
    (group_dir / "cpu.max").write_text("50000 100000\n")
    assert group.cpu_throttling() == CpuThrottling(0, 0, 0.0)
    no_cpu = MemoryCgroup(CgroupInfo(2, root, None), "paychaos-x-1", owned=False)
    assert no_cpu.cpu_throttling() is None


def _quota_cgroup_unavailable() -> str | None:
    try:
        info = detect()
    except CgroupUnavailable as exc:
        return str(exc)
    if not os.access(info.root, os.W_OK):
        return f"{info.root} is not writable (not root?)"
    if info.cpu_root is None:
        return "no cpu controller: CPU quotas cannot be set here"
    return None


@skip_unless_ci(_quota_cgroup_unavailable())
def test_real_quota_throttles_a_busy_loop_and_the_exporter_says_so() -> None:
    with MemoryCgroup.create("test-throttle", 64 * MIB, cpu_quota_cores=0.1) as cg:
        if not cg.cpu_quota_applied:
            cannot_run("the cpu controller refused the quota")
        before = cg.cpu_throttling()
        assert before is not None
        busy = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 1.5: pass"
        subprocess.run([sys.executable, "-c", busy], preexec_fn=cg.enter, check=True, timeout=60)
        after = cg.cpu_throttling()
        assert after is not None
        periods = after.periods - before.periods
        throttled = after.throttled_periods - before.throttled_periods
        assert periods >= 10, after  # runnable for >= 1 s of 100 ms periods
        assert throttled / periods > 0.5, after  # 10 % of a core for a busy loop
        assert after.throttled_seconds > before.throttled_seconds
        exported = _exported(cg)
        assert exported["instance_cpu_throttled_periods_total"] >= after.throttled_periods
