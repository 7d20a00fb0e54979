"""The control API's own HTTP/1.1 server (``httpd.py``), at the byte level, in-process.

Also: the proxy process loads no heavy module (what kept its idle memory at ~43 MiB).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxy_testkit import REPO, wait_healthy

from paychaos.chaos.proxy import httpd, start_proxy_server
from paychaos.chaos.proxy.client import ProxyClient
from paychaos.stack.service import free_port


@pytest.fixture
def api_port() -> Iterator[int]:
    with start_proxy_server() as server:
        yield server.server.port


def exchange(port: int, data: bytes, *, wait_s: float = 2.0) -> bytes:
    """Send ``data``, read until the server closes (or ``wait_s`` of silence)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            received += b"<still open>"
    return received


def status_lines(raw: bytes) -> list[bytes]:
    return re.findall(rb"HTTP/1\.1 \d{3} [^\r]*", raw)


def test_keep_alive_and_pipelined_requests_are_answered_in_order(api_port: int) -> None:
    raw = exchange(
        api_port,
        b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /proxies/missing HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /version HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    assert status_lines(raw) == [b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found", b"HTTP/1.1 200 OK"]
    assert raw.endswith(b"}") and b"Connection: close" in raw.split(b"\r\n\r\n")[-2]


def test_expect_100_continue_and_chunked_bodies(api_port: int) -> None:
    body = b'{"name": "chunky", "upstream": "127.0.0.1:9", "enabled": false}'
    raw = exchange(
        api_port,
        b"POST /proxies HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + f"{len(body):x}\r\n".encode()
        + body
        + b"\r\n0\r\n\r\n",
    )
    assert status_lines(raw) == [b"HTTP/1.1 100 Continue", b"HTTP/1.1 201 Created"]
    assert raw.endswith(b'"toxics":[]}')


def test_head_wrong_method_and_unknown_path(api_port: int) -> None:
    head = exchange(api_port, b"HEAD /proxies HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and head.endswith(b"\r\n\r\n")  # no body
    wrong = exchange(api_port, b"PUT /proxies HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert wrong.startswith(b"HTTP/1.1 405 ") and b"Allow: GET, HEAD, POST" in wrong
    assert wrong.endswith(b'{"error":"method not allowed","status":405}')
    unknown = exchange(api_port, b"GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert unknown.startswith(b"HTTP/1.1 404 ")


def test_percent_encoded_path_segments_are_decoded(api_port: int) -> None:
    client = ProxyClient(f"http://127.0.0.1:{api_port}")
    client.create_proxy("with space", "127.0.0.1:9", enabled=False)
    assert client.get_proxy("with space").name == "with space"  # the client sends with%20space


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (httpd.MAX_HEADER_BYTES + 1) + b"\r\n\r\n", b"431"),
        (
            b"POST /proxies HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (httpd.MAX_BODY_BYTES + 1),
            b"413",
        ),
    ],
)
def test_unusable_requests_get_an_error_and_the_connection_closes(
    api_port: int, request_bytes: bytes, status: bytes
) -> None:
    raw = exchange(api_port, request_bytes)
    assert raw.startswith(b"HTTP/1.1 " + status + b" ")
    assert raw.endswith(b"}")  # a JSON error, then the server closed (no "<still open>")


def test_idle_and_half_sent_requests_are_closed(
    api_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(httpd, "IDLE_TIMEOUT_S", 0.3)
    monkeypatch.setattr(httpd, "READ_TIMEOUT_S", 0.3)
    assert exchange(api_port, b"", wait_s=5) == b""  # idle: closed, not left open
    assert exchange(api_port, b"GET /healthz HTTP/1.1\r\nHost:", wait_s=5) == b""


def test_the_proxy_process_loads_no_heavy_module(tmp_path: Path) -> None:
    """What a running, idle proxy imported: not aiohttp, prometheus_client, OTel's SDK, urllib."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "importtime.txt"
    env = {**os.environ, "OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}
    command = [
        sys.executable,
        "-X",
        "importtime",
        "-m",
        "paychaos.chaos.proxy",
        "--port",
        str(port),
    ]
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr, env=env
        )
        try:
            wait_healthy(url, proc)
            client = ProxyClient(url)
            client.create_proxy("idle", "127.0.0.1:9")
            client.add_toxic("idle", "latency", {"latency": 1})
            for path in ("/metrics", "/proxies", "/events", "/version"):
                with urllib.request.urlopen(url + path, timeout=5) as response:
                    assert response.status == 200
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in log.read_text().splitlines()
        if line.startswith("import time:")
    }
    assert "paychaos.chaos.proxy.httpd" in imported  # the log is the real one
    heavy = {"aiohttp", "prometheus_client", "opentelemetry.sdk", "urllib.request", "http.client"}
    assert imported & heavy == set()
