"""Benchmark of the telemetry collector: ingest rate and query latency.

Prints:

1. spans/s ingested over HTTP by the real collector subprocess (OTLP protobuf,
   batches of 512 spans, keep-alive connections), per second of wall time and
   per core (spans divided by the collector's own CPU seconds);
2. p50/p99 latency of span queries with ``--spans`` spans stored (bulk-loaded
   through :class:`SqliteStore`), in-process and over HTTP.

Goals: ingest above 2,500 spans/s (500 checkouts/s x 5 spans), queries under 50 ms.

Usage::

    .venv/bin/python bench/bench_collector.py                 # 1,000,000 stored spans
    .venv/bin/python bench/bench_collector.py --spans 100000  # quicker
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from paychaos.contracts.signals import Span, SpanQuery
from paychaos.stack.collector.client import CollectorClient
from paychaos.stack.collector.store import RetentionLimits, SqliteStore
from paychaos.stack.service import free_port

BATCH = 512
SPANS_PER_TRACE = 5
SERVICES = ("payment-api", "gateway", "frontend")
NAMES = ("POST /checkout", "SELECT payments", "INSERT ledger", "gateway charge", "HTTP POST")
METHODS = ("visa", "paypal", "amex", "crypto")
BASE_NS = 1_700_000_000_000_000_000


def encode_batch(batch_index: int, rng: random.Random) -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    attr = resource_spans.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", "payment-api"
    spans = resource_spans.scope_spans.add().spans
    for i in range(BATCH):
        n = batch_index * BATCH + i
        span = spans.add()
        span.trace_id = (n // SPANS_PER_TRACE + 1).to_bytes(16, "big")
        span.span_id = (n + 1).to_bytes(8, "big")
        if n % SPANS_PER_TRACE:
            span.parent_span_id = (n - n % SPANS_PER_TRACE + 1).to_bytes(8, "big")
        span.name = NAMES[n % SPANS_PER_TRACE]
        span.kind = 2
        start = time.time_ns()
        span.start_time_unix_nano = start
        span.end_time_unix_nano = start + rng.randint(1, 3000) * 1_000_000
        for key, value in (
            ("payment.method", METHODS[n % 4]),
            ("http.route", "/checkout"),
            ("db.system", "postgresql"),
        ):
            a = span.attributes.add()
            a.key, a.value.string_value = key, value
        a = span.attributes.add()
        a.key, a.value.int_value = "http.status_code", 200 if n % 50 else 500
    return request.SerializeToString()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_collector(db: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [sys.executable, "-m", "paychaos.stack.collector", "--port", str(port), "--db", str(db)]
    process = subprocess.Popen([*argv, "--log-level", "warning", *extra])
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        if process.poll() is not None:
            raise SystemExit("collector exited during start-up")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.05)
    stop(process)
    raise SystemExit("collector did not become healthy")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def bench_ingest(spans: int, clients: int) -> None:
    batches = max(1, spans // BATCH)
    rng = random.Random(1)
    bodies = [encode_batch(i, rng) for i in range(batches)]
    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_collector(Path(tmp) / "ingest.db")
        try:
            host, port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
            failures: list[str] = []

            def send(share: list[bytes]) -> None:
                conn = http.client.HTTPConnection(str(host), port, timeout=30)
                try:
                    for body in share:
                        conn.request(
                            "POST",
                            "/v1/traces",
                            body,
                            {"Content-Type": "application/x-protobuf"},
                        )
                        response = conn.getresponse()
                        response.read()
                        if response.status != 200:
                            failures.append(str(response.status))
                finally:
                    conn.close()

            cpu_before = cpu_seconds(process.pid)
            started = time.perf_counter()
            threads = [
                threading.Thread(target=send, args=(bodies[i::clients],)) for i in range(clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall_s = time.perf_counter() - started
            cpu_s = cpu_seconds(process.pid) - cpu_before
            stored = len(CollectorClient(url).find_spans(SpanQuery(limit=10)))
        finally:
            stop(process)
    total = batches * BATCH
    if failures or stored == 0:
        raise SystemExit(f"ingest failed: {failures[:5]}")
    print(f"ingest: {total:,} spans in {batches} protobuf batches of {BATCH}, {clients} client(s)")
    print(f"  wall:      {total / wall_s:>10,.0f} spans/s  ({wall_s:.2f} s)")
    print(f"  per core:  {total / cpu_s:>10,.0f} spans/s of collector CPU ({cpu_s:.2f} CPU s)")
    print(f"  goal:           2,500 spans/s -> {'OK' if total / cpu_s > 2500 else 'MISSED'}")


def bulk_load(store: SqliteStore, count: int) -> None:
    rng = random.Random(2)
    chunk: list[Span] = []
    started = time.perf_counter()
    for n in range(count):
        trace = n // SPANS_PER_TRACE + 1
        root = n - n % SPANS_PER_TRACE + 1
        start = BASE_NS + n * 1_000_000  # one span per ms of simulated time
        chunk.append(
            Span(
                trace_id=f"{trace:032x}",
                span_id=f"{n + 1:016x}",
                parent_span_id=f"{root:016x}" if n % SPANS_PER_TRACE else None,
                name=NAMES[n % SPANS_PER_TRACE],
                service=SERVICES[(n // SPANS_PER_TRACE) % 3] if n % 5 == 0 else "payment-api",
                kind="server",
                start_unix_ns=start,
                end_unix_ns=start + rng.randint(1, 3000) * 1_000_000,
                status="error" if n % 50 == 0 else "unset",
                attributes={
                    "payment.method": METHODS[(n // SPANS_PER_TRACE) % 4],
                    "http.route": "/checkout",
                    "http.status_code": 500 if n % 50 == 0 else 200,
                },
            )
        )
        if len(chunk) == 20_000:
            store.add_spans(chunk)
            chunk = []
    if chunk:
        store.add_spans(chunk)
    elapsed = time.perf_counter() - started
    print(f"bulk load: {count:,} spans through SqliteStore in {elapsed:.1f} s")


def queries(count: int) -> dict[str, Callable[[int], SpanQuery | str]]:
    window_s = count / 1000  # simulated seconds covered by the data
    base_s = BASE_NS / 1e9

    def recent(i: int) -> float:
        return base_s + window_s * (0.5 + 0.4 * ((i * 7919) % 100) / 100)

    return {
        "service+name+min_duration, 60 s window": lambda i: SpanQuery(
            service="payment-api",
            name="SELECT payments",
            min_duration_ms=2000,
            since_unix_s=recent(i) - 60,
            until_unix_s=recent(i),
            limit=100,
        ),
        "attribute method=amex + status=error": lambda i: SpanQuery(
            attributes={"payment.method": "amex"}, status="error", limit=100
        ),
        "service + attribute method=paypal": lambda i: SpanQuery(
            service="gateway", attributes={"payment.method": "paypal"}, limit=100
        ),
        "attribute of one span (http.status_code=500)": lambda i: SpanQuery(
            attributes={"http.status_code": 500}, name="POST /checkout", limit=100
        ),
        "name + 10 s window, slowest 50": lambda i: SpanQuery(
            name="gateway charge",
            since_unix_s=recent(i) - 10,
            until_unix_s=recent(i),
            min_duration_ms=2500,
            limit=50,
        ),
        "whole trace by id": lambda i: f"{(i * 7919) % (count // SPANS_PER_TRACE) + 1:032x}",
    }


def timed(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def bench_queries(count: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "query.db"
        with SqliteStore(db, RetentionLimits(max_spans=max(count, 1))) as store:
            bulk_load(store, count)
            print(f"queries at {count:,} stored spans ({repeat} runs each): p50 / p99 in ms")
            for label, make in queries(count).items():
                results = store.get_trace if label.startswith("whole") else store.find_spans

                def run(i: list[int] = [0], make=make, results=results) -> object:  # noqa: B006
                    i[0] += 1
                    return results(make(i[0]))

                p50, p99 = timed(run, repeat)
                print(f"  in-process  {label:<46} {p50:7.2f} / {p99:7.2f}")
        process, url = start_collector(db, "--max-spans", str(max(count, 1)))
        try:
            client = CollectorClient(url)
            for label, make in queries(count).items():
                fetch = client.get_trace if label.startswith("whole") else client.find_spans

                def run_http(i: list[int] = [0], make=make, fetch=fetch) -> object:  # noqa: B006
                    i[0] += 1
                    return fetch(make(i[0]))

                p50, p99 = timed(run_http, repeat)
                print(f"  over HTTP   {label:<46} {p50:7.2f} / {p99:7.2f}")
        finally:
            stop(process)
    print("  goal: < 50 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="spans stored for queries")
    parser.add_argument("--ingest-spans", type=int, default=102_400, help="spans sent over HTTP")
    parser.add_argument("--clients", type=int, default=2, help="concurrent HTTP senders")
    parser.add_argument("--repeat", type=int, default=200, help="runs per query")
    args = parser.parse_args()
    bench_ingest(args.ingest_spans, args.clients)
    bench_queries(args.spans, args.repeat)


if __name__ == "__main__":
    main()
