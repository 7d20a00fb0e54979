"""paychaos.stack.cgroups against fake cgroupfs trees (v1, v2) and, where possible, the real kernel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from paychaos.stack.cgroups import (
    CgroupInfo,
    CgroupUnavailable,
    MemoryCgroup,
    cleanup_stale,
    detect,
    list_groups,
)
from tests.cannot_run import skip_unless_ci

MIB = 2**20


def _fake_v2(root: Path, controllers: str = "cpuset cpu io memory pids") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def _fake_v1(root: Path) -> Path:
    (root / "memory").mkdir(parents=True)
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (root / "cpu").mkdir()
    (root / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    return root


def _populate_v2(group: Path) -> None:
    """What the kernel would create in a new v2 group (the fake tree has no kernel)."""
    (group / "memory.max").write_text("max\n")
    (group / "memory.current").write_text("0\n")
    (group / "memory.swap.max").write_text("max\n")
    (group / "memory.events").write_text("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")
    (group / "cgroup.procs").write_text("")
    (group / "cpu.max").write_text("max 100000\n")


def _mkdir_populating(monkeypatch: pytest.MonkeyPatch, populate: object) -> None:
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: object, **kwargs: object) -> None:
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]
        if self.name.startswith("paychaos-"):
            populate(self)  # type: ignore[operator]

    monkeypatch.setattr(Path, "mkdir", mkdir)


def _rmdir_with_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernel cgroup dirs can be rmdir'ed with their files in them; fake dirs cannot."""
    real_rmdir = Path.rmdir

    def rmdir(self: Path) -> None:
        if self.name.startswith("paychaos-") and self.is_dir():
            for child in self.iterdir():
                child.unlink()
        real_rmdir(self)

    monkeypatch.setattr(Path, "rmdir", rmdir)


def test_detect_v2_and_v1_and_none(tmp_path: Path) -> None:
    v2 = detect(_fake_v2(tmp_path / "v2"))
    assert (v2.version, v2.root, v2.cpu_root) == (2, tmp_path / "v2", tmp_path / "v2")
    no_cpu = detect(_fake_v2(tmp_path / "v2b", controllers="memory pids"))
    assert no_cpu.cpu_root is None
    v1 = detect(_fake_v1(tmp_path / "v1"))
    assert (v1.version, v1.root, v1.cpu_root) == (1, tmp_path / "v1/memory", tmp_path / "v1/cpu")
    with pytest.raises(CgroupUnavailable, match="no memory cgroup found"):
        detect(tmp_path / "nothing")
    with pytest.raises(CgroupUnavailable, match="does not offer the memory controller"):
        detect(_fake_v2(tmp_path / "v2c", controllers="cpu pids"))


def test_v2_create_limit_counters_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _fake_v2(tmp_path / "cg")
    _mkdir_populating(monkeypatch, _populate_v2)
    _rmdir_with_files(monkeypatch)
    with MemoryCgroup.create("unit", 64 * MIB, cpu_quota_cores=1.5, root=root) as cg:
        assert cg.dirname == f"paychaos-unit-{os.getpid()}"
        assert (root / "cgroup.subtree_control").read_text() in ("+cpu", "+memory")
        assert cg.limit_bytes() == 64 * MIB
        assert (cg.path / "memory.swap.max").read_text() == "0"
        assert (cg.path / "cpu.max").read_text() == "150000 100000"
        assert cg.cpu_quota_applied
        (cg.path / "memory.current").write_text("4096\n")
        (cg.path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n")
        (cg.path / "cgroup.procs").write_text("")
        assert (cg.usage_bytes(), cg.oom_kills(), cg.oom_events()) == (4096, 1, 2)
        assert cg.memory_used_bytes() == 4096 and cg.memory_limit_bytes() == 64 * MIB
        cg.set_limit(32 * MIB)
        assert (cg.path / "memory.max").read_text() == str(32 * MIB)
        assert cg.pids() == []
        assert list_groups(cg.info) == [cg.dirname]
    assert not cg.path.exists()
    cg.remove()  # idempotent


def test_v2_unlimited_and_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _fake_v2(tmp_path / "cg")
    _mkdir_populating(monkeypatch, _populate_v2)
    _rmdir_with_files(monkeypatch)
    with pytest.raises(ValueError, match="must be 1-49"):
        MemoryCgroup.create("Bad Name", MIB, root=root)
    with pytest.raises(ValueError, match="limit_bytes must be positive"):
        MemoryCgroup.create("ok", 0, root=root)
    with pytest.raises(ValueError, match="cpu_quota_cores must be positive"):
        MemoryCgroup.create("ok", MIB, cpu_quota_cores=0, root=root)
    cg = MemoryCgroup.create("ok", MIB, root=root)
    try:
        (cg.path / "memory.max").write_text("max\n")
        assert cg.limit_bytes() >= 2**62
        with pytest.raises(ValueError):
            cg.set_limit(-1)
    finally:
        cg.remove()


def test_v1_fake_tree_memsw_ordering_and_counters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _fake_v1(tmp_path / "cg")
    writes: list[str] = []

    def populate(group: Path) -> None:
        if group.parent.name == "memory":
            for name, value in (
                ("memory.limit_in_bytes", "9223372036854771712"),
                ("memory.memsw.limit_in_bytes", "9223372036854771712"),
                ("memory.usage_in_bytes", "8192"),
                ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
                ("memory.failcnt", "5"),
                ("cgroup.procs", ""),
            ):
                (group / name).write_text(value + "\n")
        else:
            (group / "cpu.cfs_period_us").write_text("100000\n")
            (group / "cpu.cfs_quota_us").write_text("-1\n")
            (group / "cgroup.procs").write_text("")

    _mkdir_populating(monkeypatch, populate)
    _rmdir_with_files(monkeypatch)
    real_write = Path.write_text

    def spy(self: Path, data: str, *a: object, **k: object) -> int:
        writes.append(f"{self.name}={data}")
        return real_write(self, data, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", spy)
    cg = MemoryCgroup.create("v1unit", 100 * MIB, cpu_quota_cores=2, root=root)
    try:
        assert cg.info.version == 1
        assert (root / "cpu" / cg.dirname / "cpu.cfs_quota_us").read_text() == "200000"
        assert (cg.usage_bytes(), cg.oom_kills(), cg.oom_events()) == (8192, 2, 5)
        writes.clear()
        cg.set_limit(50 * MIB)  # lowering: memory first, then memsw
        assert writes == [
            f"memory.limit_in_bytes={50 * MIB}",
            f"memory.memsw.limit_in_bytes={50 * MIB}",
        ]
        writes.clear()
        cg.set_limit(80 * MIB)  # raising: memsw first
        assert writes == [
            f"memory.memsw.limit_in_bytes={80 * MIB}",
            f"memory.limit_in_bytes={80 * MIB}",
        ]
    finally:
        cg.remove()
    assert not (root / "memory" / cg.dirname).exists()
    assert not (root / "cpu" / cg.dirname).exists()


def test_cleanup_stale_removes_only_dead_owners(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _fake_v2(tmp_path / "cg")
    _rmdir_with_files(monkeypatch)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name in (f"paychaos-old-{dead.pid}", f"paychaos-live-{os.getpid()}", "other-group"):
        (root / name).mkdir()
        (root / name / "cgroup.procs").write_text("")
    info = CgroupInfo(2, root, None)
    assert cleanup_stale(info) == [f"paychaos-old-{dead.pid}"]
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [
        "other-group",
        f"paychaos-live-{os.getpid()}",
    ]
    assert cleanup_stale(info, include_live=True) == [f"paychaos-live-{os.getpid()}"]


def _writable_memory_cgroup() -> str | None:
    try:
        info = detect()
    except CgroupUnavailable as exc:
        return str(exc)
    if not os.access(info.root, os.W_OK):
        return f"{info.root} is not writable (not root?)"
    return None


@skip_unless_ci(_writable_memory_cgroup())
def test_real_cgroup_oom_kills_a_small_allocation() -> None:
    cg = MemoryCgroup.create("test-real", 32 * MIB)
    proc: subprocess.Popen[bytes] | None = None
    try:
        assert cg.limit_bytes() == 32 * MIB
        proc = subprocess.Popen(
            [sys.executable, "-c", "b = bytearray(96 * 2**20); b[::4096] = b'1' * len(b[::4096])"],
            preexec_fn=cg.enter,
            stderr=subprocess.DEVNULL,
        )
        assert proc.wait(timeout=30) == -9
        assert cg.oom_kills() == 1
        sleeper = subprocess.Popen(["sleep", "60"], preexec_fn=cg.enter)
        assert cg.pids() == [sleeper.pid]
    finally:
        cg.remove()
        if proc is not None and proc.poll() is None:
            proc.kill()
    assert sleeper.wait(timeout=5) == -9  # remove() killed what was left inside
    assert not cg.path.exists()
    assert cg.dirname not in list_groups(cg.info)
