"""The collector reading services' JSON log files (``--follow-log``) instead of OTLP log records.

A line read from the file must become the record the same ``logging`` call would have
sent over OTLP; a restarted collector neither loses nor repeats lines.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from collector_harness import RunningCollector
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from paychaos.contracts.signals import LogRecord
from paychaos.stack.collector import otlp
from paychaos.stack.collector.logfile import (
    FollowedLog,
    LogFollower,
    Position,
    Positions,
    parse_line,
)
from paychaos.stack.otlp_encode import LogEncoder
from paychaos.stack.telemetry import JsonFormatter, OtlpLogHandler

POLL_S = 15.0


@pytest.fixture
def both_ways() -> Iterator[tuple[logging.Logger, io.StringIO, InMemoryLogRecordExporter]]:
    """One logger writing a JSON line (to a buffer) and an OTLP record (in memory)."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "payment-api"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    buffer = io.StringIO()
    console = logging.StreamHandler(buffer)
    console.setFormatter(JsonFormatter("payment-api"))
    logger = logging.getLogger("payment-api-logfile-test")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(console)
    logger.addHandler(OtlpLogHandler(provider))
    try:
        yield logger, buffer, exporter
    finally:
        logger.handlers.clear()
        provider.shutdown()


def _by_otlp(exporter: InMemoryLogRecordExporter) -> list[LogRecord]:
    request = ExportLogsServiceRequest.FromString(LogEncoder().encode(exporter.get_finished_logs()))
    return otlp.logs_from_request(request, time.time_ns()).items


def _by_file(buffer: io.StringIO) -> list[LogRecord]:
    lines = buffer.getvalue().encode().splitlines()
    return [parse_line(line, "unnamed", time.time_ns()) for line in lines]


def test_a_line_from_the_file_is_the_record_otlp_would_have_sent(
    both_ways: tuple[logging.Logger, io.StringIO, InMemoryLogRecordExporter],
) -> None:
    logger, buffer, exporter = both_ways
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("POST /api/checkout"):
        logger.info(
            "payment succeeded",
            extra={"method": "amex", "amount_cents": 2190, "retry": False, "share": 0.5},
        )
    logger.warning("reconciler pass failed", extra={"detail": "card 4111 1111 1111 1111"})
    logger.error("database unavailable", extra={"method": "visa"})
    logger.critical("out of memory")

    sent, read = _by_otlp(exporter), _by_file(buffer)
    assert len(sent) == len(read) == 4
    for want, got in zip(sent, read, strict=True):
        assert got.body == want.body
        assert got.level == want.level
        assert got.service == want.service == "payment-api"
        assert got.severity_number == want.severity_number
        assert got.severity_text == want.severity_text
        assert got.trace_id == want.trace_id
        assert got.span_id == want.span_id
        assert dict(got.attributes) == dict(want.attributes)
        assert got.scope == want.scope
        # the JSON line carries milliseconds; OTLP nanoseconds
        assert abs(got.time_unix_ns - want.time_unix_ns) < 1_000_000
    assert read[0].trace_id is not None and read[0].span_id is not None
    assert read[1].trace_id is None
    assert [r.level for r in read] == ["info", "warn", "error", "fatal"]
    assert "4111 1111 1111 1111" not in str(read[1].attributes["detail"])  # redacted at source


def test_an_exception_keeps_its_stack_trace(
    both_ways: tuple[logging.Logger, io.StringIO, InMemoryLogRecordExporter],
) -> None:
    logger, buffer, _ = both_ways
    try:
        raise ValueError("gateway said no")
    except ValueError:
        logger.exception("unhandled error")
    (record,) = _by_file(buffer)
    assert record.level == "error"
    trace_text = str(record.attributes["exception.stacktrace"])
    assert "ValueError: gateway said no" in trace_text


def test_a_line_that_is_not_json_is_kept_as_text() -> None:
    record = parse_line(b"Traceback (most recent call last):", "payment-api", 123)
    assert record.body == "Traceback (most recent call last):"
    assert record.service == "payment-api"
    assert record.time_unix_ns == 123
    assert record.attributes == {"log.format": "text"}
    assert parse_line(b'["a list"]', "svc", 1).attributes == {"log.format": "text"}
    assert parse_line(b"{not json", "svc", 1).body == "{not json"


def test_ids_that_are_not_hex_ids_are_dropped() -> None:
    line = json.dumps({"msg": "x", "trace_id": "nothex" * 6, "span_id": "0" * 16}).encode()
    record = parse_line(line, "svc", 1)
    assert record.trace_id is None and record.span_id is None


def test_the_follower_reads_complete_lines_only_and_follows_truncation_and_replacement(
    tmp_path: Path,
) -> None:
    path = tmp_path / "api.log"
    follower = LogFollower(FollowedLog("payment-api", path))
    assert follower.read(1) == []  # not there yet
    assert not follower.commit()
    path.write_bytes(b'{"msg":"one"}\n{"msg":"tw')
    assert [r.body for r in follower.read(1)] == ["one"]
    assert follower.commit()
    assert follower.read(1) == []  # the partial line waits for its newline
    with path.open("ab") as fh:
        fh.write(b'o"}\n')
    assert [r.body for r in follower.read(1)] == ["two"]
    # not committed (the store failed): the same lines come again
    assert [r.body for r in follower.read(1)] == ["two"]
    follower.commit()
    path.write_bytes(b'{"msg":"after truncation"}\n')  # shorter than where we were
    assert [r.body for r in follower.read(1)] == ["after truncation"]
    follower.commit()
    replacement = tmp_path / "api.log.new"
    replacement.write_bytes(b'{"msg":"a new file, longer than the old one was"}\n')
    os.replace(replacement, path)  # same name, another inode
    assert [r.body for r in follower.read(1)] == ["a new file, longer than the old one was"]


def test_positions_survive_a_round_trip_and_ignore_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "api.log"
    path.write_bytes(b'{"msg":"one"}\n')
    follower = LogFollower(FollowedLog("payment-api", path))
    follower.read(1)
    follower.commit()
    positions = Positions(tmp_path / "positions.json")
    positions.save([follower])
    assert positions.load() == {str(path): Position(path.stat().st_ino, 14)}
    (tmp_path / "positions.json").write_text("{broken")
    assert positions.load() == {}


def _bodies(collector: RunningCollector, service: str) -> list[str]:
    status, body = collector.get(f"/api/logs?service={service}&limit=1000")
    assert status == 200
    return sorted(r["body"] for r in json.loads(body)["results"])


def _wait_for(collector: RunningCollector, service: str, count: int) -> list[str]:
    deadline = time.monotonic() + POLL_S
    while time.monotonic() < deadline:
        bodies = _bodies(collector, service)
        if len(bodies) >= count:
            return bodies
        time.sleep(0.1)
    return _bodies(collector, service)


def test_a_restarted_collector_neither_loses_nor_repeats_lines(
    start_collector: Callable[..., RunningCollector], tmp_path: Path
) -> None:
    log = tmp_path / "api.log"
    db = tmp_path / "telemetry.db"
    flag = f"--follow-log=payment-api={log}"
    collector = start_collector(flag, db_path=db)
    with log.open("ab") as fh:  # the file appears after the collector started
        fh.write(b'{"service":"payment-api","level":"info","msg":"first"}\n')
    assert _wait_for(collector, "payment-api", 1) == ["first"]
    assert collector.metric('collector_items_accepted_total{signal="logs"}') == 1.0
    collector.process.terminate()
    collector.process.wait(timeout=20)
    with log.open("ab") as fh:  # written while the collector was down
        fh.write(b'{"service":"payment-api","level":"error","msg":"second"}\nplain text\n')
    collector = start_collector(flag, db_path=db)
    assert _wait_for(collector, "payment-api", 3) == ["first", "plain text", "second"]
    time.sleep(0.5)  # a few more passes: nothing is read twice
    assert _bodies(collector, "payment-api") == ["first", "plain text", "second"]


def test_a_malformed_follow_log_flag_is_refused_by_name(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "paychaos.stack.collector", "--port", "1"]
    argv += ["--db", str(tmp_path / "t.db"), "--follow-log", "no-equals-sign"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--follow-log: expected SERVICE=PATH, got 'no-equals-sign'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "t.db").exists()
