"""Helpers to run a real collector subprocess in tests (imported by conftest and tests)."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

READY_TIMEOUT_S = 20.0


@dataclass
class RunningCollector:
    """A collector process started by a test."""

    process: subprocess.Popen[bytes]
    base_url: str
    db_path: Path
    log_path: Path

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
            exc.close()
            return exc.code, body

    def post(
        self, path: str, body: bytes, headers: dict[str, str], method: str = "POST"
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(
            self.base_url + path, data=body, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            result = (exc.code, dict(exc.headers), payload)
            exc.close()
            return result

    def metric(self, line_prefix: str) -> float:
        """Value of the first /metrics sample line starting with ``line_prefix`` (0 if absent)."""
        status, text = self.get("/metrics")
        assert status == 200
        for line in text.decode().splitlines():
            if line.startswith(line_prefix + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def wait_ready(collector: RunningCollector) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if collector.process.poll() is not None:
            raise RuntimeError(f"collector exited early:\n{collector.log_path.read_text()}")
        try:
            with urllib.request.urlopen(collector.base_url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(
        f"collector not ready in {READY_TIMEOUT_S} s:\n{collector.log_path.read_text()}"
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM this process (by its own pid), then SIGKILL if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
