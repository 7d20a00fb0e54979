"""Retention limits, durability of acknowledged batches, and the process lifecycle."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from collector_harness import RunningCollector
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from test_collector_otlp import make_checkout_spans

from paychaos.contracts.signals import SpanQuery
from paychaos.stack.collector.client import CollectorClient
from paychaos.stack.collector.store import SqliteStore

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def test_acknowledged_batch_survives_a_kill(
    start_collector: Callable[..., RunningCollector],
) -> None:
    collector = start_collector()
    sdk_spans = make_checkout_spans(service="durable")
    body = encode_spans(sdk_spans).SerializeToString()
    assert collector.post("/v1/traces", body, PROTOBUF)[0] == 200
    collector.process.send_signal(signal.SIGKILL)  # no shutdown, no checkpoint
    collector.process.wait(timeout=10)
    with SqliteStore(collector.db_path) as store:
        assert len(store.find_spans(SpanQuery(service="durable"))) == len(sdk_spans)
    # and a restarted collector on the same file serves it
    again = start_collector(db_path=collector.db_path)
    assert len(CollectorClient(again.base_url).find_spans(SpanQuery(service="durable"))) == 3


def test_retention_keeps_the_newest_and_counts_drops(
    start_collector: Callable[..., RunningCollector],
) -> None:
    collector = start_collector("--max-spans", "5", "--retention-interval-s", "0.1")
    names: list[str] = []
    for batch in range(4):
        spans = make_checkout_spans(service=f"batch-{batch}")
        names += [s.name for s in spans]
        assert (
            collector.post("/v1/traces", encode_spans(spans).SerializeToString(), PROTOBUF)[0]
            == 200
        )
    client = CollectorClient(collector.base_url)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # bounded: retention runs every 0.1 s
        if (
            collector.metric('collector_items_dropped_total{reason="retention",signal="spans"}')
            == 7
        ):
            break
        time.sleep(0.05)
    assert collector.metric('collector_items_dropped_total{reason="retention",signal="spans"}') == 7
    kept = client.find_spans(SpanQuery())
    assert len(kept) == 5
    assert {s.service for s in kept} == {"batch-2", "batch-3"}  # the oldest went first
    assert len(client.find_spans(SpanQuery(service="batch-3"))) == 3


def test_sigterm_exits_cleanly(start_collector: Callable[..., RunningCollector]) -> None:
    collector = start_collector()
    body = encode_spans(make_checkout_spans(service="term")).SerializeToString()
    assert collector.post("/v1/traces", body, PROTOBUF)[0] == 200
    collector.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says why
    assert collector.process.wait(timeout=15) in (0, -signal.SIGTERM)
    assert "Traceback" not in collector.log_path.read_text()
    wal = collector.db_path.with_name(collector.db_path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # the store checkpointed and closed


def test_refuses_non_loopback_without_flag(
    start_collector: Callable[..., RunningCollector],
) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "paychaos.stack.collector",
            "--host",
            "0.0.0.0",
            "--port",
            "1",
            "--db",
            ":memory:",
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert b"not loopback" in result.stderr
