"""Helpers of the traffic tests: run Locust as a subprocess, bounded, and clean up after it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paychaos.stack.service import free_port

REPO = Path(__file__).resolve().parents[2]
LOCUST = str(Path(sys.executable).parent / "locust")
LOCUSTFILE = str(REPO / "locustfiles" / "checkout.py")


@dataclass
class LocustRun:
    returncode: int
    output: str
    stack_dir: Path
    ledger_dir: Path

    def summary(self) -> dict[str, Any]:
        files = sorted(self.ledger_dir.glob("summary-*.json"))
        assert files, f"no summary written; output:\n{self.output[-3000:]}"
        return dict(json.loads(files[-1].read_text()))

    def ledger(self) -> list[dict[str, Any]]:
        rows = []
        for path in sorted(self.ledger_dir.glob("ledger-*.jsonl")):
            rows += [json.loads(line) for line in path.read_text().splitlines() if line]
        return rows


def start_locust(
    tmp: Path,
    *args: str,
    environ: dict[str, str] | None = None,
    headless: bool = True,
    locustfile: str = LOCUSTFILE,
) -> tuple[subprocess.Popen[str], Path, Path]:
    stack_dir, ledger_dir = tmp / "stack", tmp / "ledger"
    argv = [
        LOCUST,
        "-f",
        locustfile,
        *(["--headless"] if headless else []),
        "--stack-dir",
        str(stack_dir),
        "--ledger-dir",
        str(ledger_dir),
        *args,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "", **(environ or {})}
    proc = subprocess.Popen(
        argv,
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return proc, stack_dir, ledger_dir


def finish(proc: subprocess.Popen[str], timeout_s: float) -> str:
    """Wait for Locust; on timeout SIGINT, then SIGKILL its whole process group."""
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        return out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        raise AssertionError(f"locust did not finish in {timeout_s}s:\n{out[-3000:]}") from None
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def processes_args(processes: int) -> list[str]:
    """``--processes N`` on a free master port: Locust's default (5557) is shared by every
    run on the machine, and another suite's workers would join this master (or the bind
    fail with "Address already in use"). Forked workers connect to ``--master-port``."""
    port = str(free_port())
    return [
        "--processes",
        str(processes),
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        port,
        "--master-port",
        port,
    ]


def run_locust(tmp: Path, *args: str, timeout_s: float = 150) -> LocustRun:
    proc, stack_dir, ledger_dir = start_locust(tmp, *args)
    out = finish(proc, timeout_s)
    return LocustRun(proc.returncode, out, stack_dir, ledger_dir)


def processes_using(path: Path) -> list[str]:
    """Command lines of live processes that mention ``path`` (leftover stack components)."""
    found = []
    needle = str(path).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state != "Z":
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def wait_gone(path: Path, timeout_s: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while (left := processes_using(path)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _wait_port(port: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


@contextlib.contextmanager
def service(argv: list[str], port: int) -> Iterator[str]:
    """Run a loopback service process; always stop it."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OTEL_SDK_DISABLED": "true"}
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def stored_collector(stack_dir: Path) -> Iterator[str]:
    """A collector reopened on the run's stored telemetry (the stack itself is gone)."""
    port = free_port()
    db = stack_dir / "collector.sqlite3"
    with service(
        [
            sys.executable,
            "-m",
            "paychaos.stack.collector",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--db",
            str(db),
        ],
        port,
    ) as url:
        yield url


@contextlib.contextmanager
def fake_api(delay_ms: float = 0.0) -> Iterator[str]:
    """The instant fake payment API, or one answering after ``delay_ms``."""
    port = free_port()
    argv = [sys.executable, "-m", "paychaos.traffic.fake_api", "--port", str(port)]
    with service([*argv, "--delay-ms", str(delay_ms)], port) as url:
        yield url
