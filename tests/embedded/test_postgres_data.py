"""PostgreSQL's data stays in the state dir or is removed: a run leaves nothing behind.

As root, PostgreSQL runs as the system user ``paychaos-pg``; when that user cannot
enter the state dir (pytest's ``/tmp/pytest-of-root`` is 0700) the data lives in a
per-run ``$TMPDIR/paychaos-pg-<pid>-<random>`` directory that must be gone once the
stack stops, and leftovers of dead runs are removed at the next start.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paychaos.stack import postgres
from paychaos.stack.embedded import EmbeddedStack, StackConfig, StackPorts


def _listing(root: Path) -> set[str]:
    return {p.name for p in root.iterdir()}


def _data_dir(stack: EmbeddedStack) -> Path:
    argv = stack.supervisor.components["postgres"].spec.argv
    return Path(argv[argv.index("-D") + 1])


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A TMPDIR of the test's own (for this process and every component it starts)."""
    root = Path(tempfile.mkdtemp(prefix="paychaos-test-tmpdir-"))
    root.chmod(0o755)  # like /tmp: other users (paychaos-pg) may enter
    monkeypatch.setenv("TMPDIR", str(root))
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_stack_lifecycle_leaves_nothing_outside_its_state_dir(
    tmp_path: Path, private_tmp: Path
) -> None:
    system_tmp = Path("/tmp")
    before_tmp = {n for n in _listing(system_tmp) if n.startswith("paychaos")}
    state = tmp_path / "state"
    stack = EmbeddedStack(
        StackConfig(state_dir=state, ports=StackPorts.auto(), gateway_latency_scale=0.0)
    )
    data_dir = _data_dir(stack)
    stack.start()
    try:
        assert (data_dir / "PG_VERSION").exists()
        during = _listing(private_tmp)
        outside = not data_dir.is_relative_to(state.resolve())
        if os.geteuid() == 0 and outside:
            # root with a state dir paychaos-pg cannot enter: a per-run directory in TMPDIR
            assert data_dir.parent.parent == private_tmp
            assert data_dir.parent.name.startswith(f"paychaos-pg-{os.getpid()}-"), during
    finally:
        stack.stop()
    assert not data_dir.exists() or data_dir.is_relative_to(state.resolve())
    assert _listing(private_tmp) == set(), "left in TMPDIR"
    after_tmp = {n for n in _listing(system_tmp) if n.startswith("paychaos")}
    ours = {n for n in after_tmp - before_tmp if str(os.getpid()) in n}
    assert not ours, f"left in /tmp: {sorted(ours)}"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _fake_run(root: Path, name: str, owner: str | None, *, postmaster: int | None = None) -> Path:
    run = root / name
    (run / "postgres").mkdir(parents=True)
    (run / "postgres" / "PG_VERSION").write_text("17\n")
    if owner is not None:
        (run / "owner").write_text(owner + "\n")
    if postmaster is not None:
        (run / "postgres" / "postmaster.pid").write_text(f"{postmaster}\n/data\n")
    return run


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    for p in [path, *path.rglob("*")]:
        os.utime(p, (then, then))


def test_cleanup_at_start_removes_only_runs_whose_owner_is_gone(tmp_path: Path) -> None:
    me = os.getpid()
    my_start = postgres._start_time(me)
    dead = _dead_pid()
    _fake_run(tmp_path, f"paychaos-pg-{dead}-a", f"{dead} 123")
    _fake_run(tmp_path, f"paychaos-pg-{me}-recycled", f"{me} 1")  # same pid, other process
    _fake_run(tmp_path, f"paychaos-pg-{dead}-serving", f"{dead} 123", postmaster=me)
    _fake_run(tmp_path, f"paychaos-pg-{me}-live", f"{me} {my_start}")
    _age(_fake_run(tmp_path, "paychaos-pg-12345678", None), 3600)  # older paychaos, idle
    _fake_run(tmp_path, "paychaos-pg-87654321", None)  # older paychaos, just made
    _age(_fake_run(tmp_path, "paychaos-pg-55555555", None, postmaster=me), 3600)
    (tmp_path / "paychaos-demo-x").mkdir()
    (tmp_path / "unrelated").mkdir()

    removed = postgres.cleanup_stale(tmp_path)

    assert sorted(removed) == sorted(
        [f"paychaos-pg-{dead}-a", f"paychaos-pg-{me}-recycled", "paychaos-pg-12345678"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            f"paychaos-pg-{dead}-serving",
            f"paychaos-pg-{me}-live",
            "paychaos-pg-87654321",
            "paychaos-pg-55555555",
            "paychaos-demo-x",
            "unrelated",
        ]
    )


def test_a_run_directory_is_removed_at_exit_if_the_stack_never_stopped(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from paychaos.stack import postgres; "
        "run = postgres.new_run_dir(Path(sys.argv[1])); (run / 'postgres').mkdir(); print(run)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().startswith(str(tmp_path / "paychaos-pg-"))
    assert list(tmp_path.iterdir()) == []


def test_down_removes_the_data_in_the_state_dir_unless_asked_to_keep_it(tmp_path: Path) -> None:
    data = tmp_path / "postgres"
    data.mkdir()
    (data / "PG_VERSION").write_text("17\n")
    paychaos = [sys.executable, "-m", "paychaos.cli", "--state-dir", str(tmp_path), "down"]
    kept = subprocess.run([*paychaos, "--keep-data"], capture_output=True, text=True, timeout=60)
    assert kept.returncode == 0 and data.exists()
    down = subprocess.run(paychaos, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert f"removed PostgreSQL data in {data}" in down.stdout
    assert not data.exists()
