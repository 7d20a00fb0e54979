"""Fixtures that run the real Prometheus/Alertmanager binaries and always stop them."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from paychaos.contracts.errors import MissingDependency
from paychaos.stack.monitoring.processes import find_binary
from paychaos.stack.process import ProcessSpec
from tests.cannot_run import cannot_run


def require_binary(name: str) -> str:
    """The binary's path, or skip the test saying how to install it (fail under CI)."""
    try:
        return find_binary(name)
    except MissingDependency as exc:
        cannot_run(str(exc))


def _healthy(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def run_process(spec: ProcessSpec, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``spec``, wait for its health URL (bounded), and stop it by its pid on exit."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            spec.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=spec.cwd,
            env={**os.environ, **spec.env},
        )
    try:
        deadline = time.monotonic() + spec.ready_timeout_s
        while not (spec.health_url and _healthy(spec.health_url)):
            if proc.poll() is not None:
                pytest.fail(f"{spec.name} exited with {proc.returncode}:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{spec.name} not ready in {spec.ready_timeout_s} s:\n{log_path.read_text()}"
                )
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=spec.stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@pytest.fixture
def promtool() -> str:
    return require_binary("promtool")


@pytest.fixture
def amtool() -> str:
    return require_binary("amtool")


@pytest.fixture
def prometheus_binary() -> str:
    return require_binary("prometheus")


@pytest.fixture
def alertmanager_binary() -> str:
    return require_binary("alertmanager")


@pytest.fixture
def process_runner(
    tmp_path: Path,
) -> Callable[[ProcessSpec], AbstractContextManager[subprocess.Popen[bytes]]]:
    """``with process_runner(spec) as proc:`` runs one binary for the test, logs in tmp_path."""

    def runner(spec: ProcessSpec) -> AbstractContextManager[subprocess.Popen[bytes]]:
        return run_process(spec, tmp_path / f"{spec.name}.log")

    return runner
