"""Benchmark of the fault proxy: added latency, throughput, latency-toxic accuracy.

Run: ``.venv/bin/python bench/bench_proxy.py [--round-trips 5000] [--bulk-mb 200]``

Starts ``python -m paychaos.chaos.proxy`` as a subprocess (uvloop, as in production) and
an asyncio echo server in this process's own thread, then prints, measured in
one run side by side:

1. round-trip time of a 64-byte ping-pong, direct vs through the proxy (no
   toxic): p50 / p99 and the proxy's added latency;
2. bulk throughput (one direction, to a discarding server) direct vs proxied;
3. the latency toxic at 50, 200 and 1000 ms: observed mean / p50 vs requested,
   and how many round trips came back *earlier* than requested (must be 0);
4. the proxy process's idle resident memory (VmRSS from ``/proc/PID/status``),
   read right after start, before any proxy exists.

Bounded: about 30-60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from paychaos.chaos.proxy.client import ProxyClient
from paychaos.stack.service import free_port

REPO = Path(__file__).resolve().parents[1]


class _Servers:
    """An echo server and a discard server on one asyncio loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.echo_port = free_port()
        self.sink_port = free_port()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        class Echo(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def data_received(self, data: bytes) -> None:
                self.transport.write(data)  # type: ignore[attr-defined]

        class Sink(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def data_received(self, data: bytes) -> None:
                pass

            def eof_received(self) -> bool:
                self.transport.write(b"k")  # type: ignore[attr-defined]
                return False

        async def start() -> None:
            self.echo = await self.loop.create_server(Echo, "127.0.0.1", self.echo_port)
            self.sink = await self.loop.create_server(Sink, "127.0.0.1", self.sink_port)

        self.loop.run_until_complete(start())
        self._ready.set()
        self.loop.run_forever()

    def close(self) -> None:
        def stop() -> None:
            self.echo.close()
            self.sink.close()
            self.loop.stop()

        self.loop.call_soon_threadsafe(stop)
        self._thread.join(5)


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from ``/proc/PID/status`` (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


@contextlib.contextmanager
def proxy_process() -> Iterator[tuple[str, int]]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "paychaos.chaos.proxy",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env={**os.environ, "OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": ""},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield url, proc.pid
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def ping_pong(port: int, count: int, size: int = 64, warmup: int = 200) -> list[float]:
    payload = b"p" * size
    rtts: list[float] = []
    with _connect(port) as sock:
        for _ in range(warmup):
            sock.sendall(payload)
            _recv(sock, size)
        for _ in range(count):
            start = time.perf_counter()
            sock.sendall(payload)
            _recv(sock, size)
            rtts.append(time.perf_counter() - start)
    return rtts


def _recv(sock: socket.socket, size: int) -> None:
    got = 0
    while got < size:
        chunk = sock.recv(size - got)
        if not chunk:
            raise ConnectionError("closed")
        got += len(chunk)


def bulk_mb_s(port: int, total_mb: int) -> float:
    block = b"\0" * (256 * 1024)
    blocks = total_mb * 4
    with _connect(port) as sock:
        start = time.perf_counter()
        for _ in range(blocks):
            sock.sendall(block)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)  # the sink acknowledges once it has read everything
        elapsed = time.perf_counter() - start
    return total_mb * 1.048576 / elapsed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=5000)
    parser.add_argument("--bulk-mb", type=int, default=200)
    args = parser.parse_args()
    servers = _Servers()
    try:
        with proxy_process() as (url, pid):
            time.sleep(0.5)  # let start-up garbage settle
            idle_kib = rss_kib(pid)
            client = ProxyClient(url)
            echo = client.create_proxy("echo", f"127.0.0.1:{servers.echo_port}")
            sink = client.create_proxy("sink", f"127.0.0.1:{servers.sink_port}")

            print(f"== round trip, {args.round_trips} x 64 B ping-pong, no toxic (ms)")
            direct = ping_pong(servers.echo_port, args.round_trips)
            proxied = ping_pong(echo.port, args.round_trips)
            print(f"{'':10}{'p50':>9}{'p99':>9}{'mean':>9}")
            for label, rtts in (("direct", direct), ("proxied", proxied)):
                p50, p99 = pct(rtts, 0.5) * 1e3, pct(rtts, 0.99) * 1e3
                print(f"{label:10}{p50:9.3f}{p99:9.3f}{statistics.fmean(rtts) * 1e3:9.3f}")
            added50 = (pct(proxied, 0.5) - pct(direct, 0.5)) * 1e3
            added99 = (pct(proxied, 0.99) - pct(direct, 0.99)) * 1e3
            print(f"{'added':10}{added50:9.3f}{added99:9.3f}")

            print(f"\n== bulk transfer, {args.bulk_mb} MiB one way (MB/s)")
            direct_mb = bulk_mb_s(servers.sink_port, args.bulk_mb)
            proxied_mb = bulk_mb_s(sink.port, args.bulk_mb)
            print(f"direct   {direct_mb:9.1f}\nproxied  {proxied_mb:9.1f}")

            print("\n== latency toxic accuracy (downstream, per round trip, ms)")
            print(
                f"{'requested':>10}{'n':>5}{'mean':>10}{'p50':>10}{'min':>10}{'error %':>9}"
                f"{'early':>7}"
            )
            for latency_ms, count in ((50, 40), (200, 40), (1000, 6)):
                client.add_toxic("echo", "latency", {"latency": latency_ms})
                rtts = ping_pong(echo.port, count, warmup=1)
                client.remove_toxic("echo", "latency_downstream")
                mean_ms = statistics.fmean(rtts) * 1e3
                p50_ms = pct(rtts, 0.5) * 1e3
                min_ms = min(rtts) * 1e3
                error = (mean_ms - latency_ms) / latency_ms * 100
                early = sum(1 for rtt in rtts if rtt * 1e3 < latency_ms)
                print(
                    f"{latency_ms:>10}{count:>5}{mean_ms:10.2f}{p50_ms:10.2f}{min_ms:10.2f}"
                    f"{error:9.2f}{early:>7}"
                )

            print(f"\n== idle memory of the proxy process\nVmRSS    {idle_kib / 1024:9.1f} MiB")
    finally:
        servers.close()


if __name__ == "__main__":
    main()
