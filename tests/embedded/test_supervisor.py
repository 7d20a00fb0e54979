"""The supervisor starts, watches, restarts and stops real processes, and leaves none behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from paychaos.contracts.errors import ComponentFailed
from paychaos.stack.process import ProcessSpec
from paychaos.stack.service import free_port
from paychaos.stack.supervisor import Supervisor


def _http_spec(name: str, restart: str = "no") -> ProcessSpec:
    port = free_port()
    return ProcessSpec(
        name=name,
        argv=(sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"),
        health_url=f"http://127.0.0.1:{port}/",
        port=port,
        ready_timeout_s=15,
        restart=restart,  # type: ignore[arg-type]
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def _wait(predicate, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_start_status_stop(tmp_path: Path) -> None:
    sup = Supervisor([_http_spec("a"), _http_spec("b")], tmp_path / "logs")
    sup.start()
    try:
        rows = {row["name"]: row for row in sup.status()}
        assert rows["a"]["alive"] and rows["a"]["healthy"] and rows["b"]["healthy"]
        pids = [row["pid"] for row in rows.values()]
    finally:
        sup.stop()
    assert not any(_alive(pid) for pid in pids)


def test_a_component_that_dies_at_start_fails_with_its_log_and_stops_the_rest(
    tmp_path: Path,
) -> None:
    good = _http_spec("good")
    bad = ProcessSpec(
        name="bad",
        argv=(sys.executable, "-c", "import sys; print('boom: no config'); sys.exit(3)"),
        port=free_port(),
    )
    sup = Supervisor([good, bad], tmp_path / "logs")
    with pytest.raises(ComponentFailed, match=r"(?s)bad: exited with code 3.*boom: no config"):
        sup.start()
    assert not _alive(sup.components["good"].pid or 0)


def test_restart_policy_brings_a_killed_component_back(tmp_path: Path) -> None:
    events: list[str] = []
    sup = Supervisor(
        [_http_spec("web", restart="unless-stopped")],
        tmp_path / "logs",
        on_event=lambda kind, msg: events.append(f"{kind}: {msg}"),
        poll_interval_s=0.1,
    )
    sup.start()
    try:
        first = sup.pid_of("web")
        assert first is not None
        os.kill(first, signal.SIGKILL)
        assert _wait(lambda: sup.components["web"].restarts == 1)
        assert sup.pid_of("web") != first
        assert any("web killed by signal 9" in e for e in events), events
        assert _wait(lambda: sup.status()[0]["healthy"])
    finally:
        sup.stop()


def test_no_restart_policy_reports_the_death_once(tmp_path: Path) -> None:
    events: list[str] = []
    sup = Supervisor(
        [_http_spec("web")],
        tmp_path / "logs",
        on_event=lambda kind, msg: events.append(kind),
        poll_interval_s=0.1,
    )
    sup.start()
    try:
        os.kill(sup.pid_of("web") or 0, signal.SIGTERM)
        assert _wait(lambda: "died" in events)
        time.sleep(0.5)
        assert events.count("died") == 1 and sup.components["web"].restarts == 0
    finally:
        sup.stop()


def test_restart_on_request_and_a_paused_process_still_stops(tmp_path: Path) -> None:
    sup = Supervisor([_http_spec("web")], tmp_path / "logs", poll_interval_s=0.1)
    sup.start()
    try:
        first = sup.pid_of("web")
        sup.restart("web")
        second = sup.pid_of("web")
        assert second != first and sup.status()[0]["healthy"]
        os.kill(second or 0, signal.SIGSTOP)
    finally:
        sup.stop()
    assert not _alive(second or 0)


def test_children_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: SIGKILL the supervisor process, its component goes too."""
    pid_file = tmp_path / "child.pid"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(Path.cwd())!r})
        from paychaos.stack.process import ProcessSpec
        from paychaos.stack.supervisor import Supervisor
        spec = ProcessSpec(name="sleeper", argv=(sys.executable, "-c", "import time; time.sleep(60)"))
        sup = Supervisor([spec], Path({str(tmp_path)!r}) / "logs")
        sup.start()
        Path({str(pid_file)!r}).write_text(str(sup.pid_of("sleeper")))
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        assert _wait(lambda: pid_file.exists() and pid_file.read_text() != "")
        child = int(pid_file.read_text())
        assert _alive(child)
        proc.kill()
        proc.wait(timeout=10)
        assert _wait(lambda: not _alive(child), timeout_s=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stop_removes_each_components_scratch_dir(tmp_path: Path) -> None:
    from dataclasses import replace

    scratch = tmp_path / "scratch"
    (scratch / "data").mkdir(parents=True)
    (scratch / "data" / "file").write_text("x")
    sup = Supervisor([replace(_http_spec("a"), scratch_dir=str(scratch))], tmp_path / "logs")
    sup.start()
    try:
        assert scratch.exists()  # kept while the component runs
    finally:
        sup.stop()
    assert not scratch.exists()
