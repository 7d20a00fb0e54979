"""The telemetry collector: where every signal a check looks for lands (Alloy → Tempo/Loki).

Run it as ``python -m paychaos.stack.collector --port 4318 --db telemetry.db``. In-process
use goes through :class:`SqliteStore`; other processes use
:class:`~paychaos.stack.collector.client.CollectorClient`; tests of checks use
:class:`InMemorySources`. All three implement the protocols of
:mod:`paychaos.contracts.signals`.
"""

from __future__ import annotations

import sys

from paychaos.stack.process import ProcessSpec

from .analysis import CriticalPath, LatencyBreakdown, critical_path, latency_breakdown, self_times
from .app import CollectorSettings, create_app
from .client import CollectorClient
from .memory import InMemorySources
from .store import RetentionLimits, SqliteStore


def process_spec(port: int, db_path: str, *extra_args: str, host: str = "127.0.0.1") -> ProcessSpec:
    """How the supervisor runs the collector as its own process.

    >>> process_spec(4318, "/tmp/t.db", "--max-spans", "100000").health_url
    'http://127.0.0.1:4318/healthz'
    """
    argv = (sys.executable, "-m", "paychaos.stack.collector", "--host", host, "--port", str(port))
    return ProcessSpec(
        name="collector",
        argv=(*argv, "--db", db_path, *extra_args),
        health_url=f"http://{host}:{port}/healthz",
        port=port,
    )


__all__ = [
    "CollectorClient",
    "CollectorSettings",
    "CriticalPath",
    "InMemorySources",
    "LatencyBreakdown",
    "RetentionLimits",
    "SqliteStore",
    "create_app",
    "critical_path",
    "latency_breakdown",
    "process_spec",
    "self_times",
]
