"""Fixtures: a real collector subprocess on a free loopback port, always stopped."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from collector_harness import RunningCollector, stop, wait_ready

from paychaos.stack.service import free_port


@pytest.fixture
def start_collector(tmp_path: Path) -> Iterator[Callable[..., RunningCollector]]:
    """Start collectors with extra flags; every one is stopped when the test ends."""
    started: list[subprocess.Popen[bytes]] = []
    handles: list[IO[bytes]] = []

    def start(*extra: str, db_path: Path | None = None) -> RunningCollector:
        port = free_port()
        db = db_path or tmp_path / f"telemetry-{port}.db"
        log_path = tmp_path / f"collector-{port}.log"
        log_file = log_path.open("wb")
        handles.append(log_file)
        argv = [sys.executable, "-m", "paychaos.stack.collector", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--db", str(db), "--log-level", "warning", *extra]
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT)
        started.append(process)
        collector = RunningCollector(process, f"http://127.0.0.1:{port}", db, log_path)
        wait_ready(collector)
        return collector

    try:
        yield start
    finally:
        for process in started:
            stop(process)
        for handle in handles:
            handle.close()


@pytest.fixture
def collector(start_collector: Callable[..., RunningCollector]) -> RunningCollector:
    return start_collector()
