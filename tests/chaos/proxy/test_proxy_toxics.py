"""Each toxic's effect through a real proxy process (loose bounds on timing)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import urllib.request

import pytest
from proxy_testkit import (
    TcpServer,
    closed_by_peer,
    connect,
    recv_all,
    recv_exactly,
    round_trip_s,
)

from paychaos.chaos.proxy.client import ProxyClient


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_delays_each_round_trip(
    client: ProxyClient, echo_server: TcpServer, stream: str
) -> None:
    proxy = client.create_proxy("lat", echo_server.address)
    client.add_toxic("lat", "latency", {"latency": 200}, stream=stream)
    with connect(proxy.port) as sock:
        rtts = [round_trip_s(sock) for _ in range(3)]
    assert all(0.19 <= rtt <= 0.4 for rtt in rtts), rtts


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_never_delivers_early(
    client: ProxyClient, echo_server: TcpServer, stream: str
) -> None:
    """No reply may come back before the configured latency (a lower bound, not a timing race).

    The proxy once stamped arrivals with uvloop's millisecond loop clock and
    let its timers round down: a few replies in 40 came back up to ~0.5 ms early.
    """
    latency_ms = 50
    proxy = client.create_proxy("never-early", echo_server.address)
    client.add_toxic("never-early", "latency", {"latency": latency_ms}, stream=stream)
    rtts_ns: list[int] = []
    with connect(proxy.port) as sock:
        for index in range(40):
            payload = index.to_bytes(4, "big")
            start = time.perf_counter_ns()
            sock.sendall(payload)
            assert recv_exactly(sock, len(payload)) == payload
            rtts_ns.append(time.perf_counter_ns() - start)
    early = [rtt / 1e6 for rtt in rtts_ns if rtt < latency_ms * 1_000_000]
    assert early == [], f"{len(early)} of 40 replies came back before {latency_ms} ms: {early}"


def test_adding_and_removing_applies_to_an_open_connection(
    client: ProxyClient, echo_server: TcpServer
) -> None:
    proxy = client.create_proxy("live", echo_server.address)
    with connect(proxy.port) as sock:
        assert round_trip_s(sock) < 0.15
        client.add_toxic("live", "latency", {"latency": 200})
        assert 0.19 <= round_trip_s(sock) <= 0.4
        client.remove_toxic("live", "latency_downstream")
        assert round_trip_s(sock) < 0.15


def test_toxicity_zero_never_applies(client: ProxyClient, echo_server: TcpServer) -> None:
    proxy = client.create_proxy("zero", echo_server.address)
    client.add_toxic("zero", "latency", {"latency": 500}, toxicity=0.0)
    for _ in range(5):
        with connect(proxy.port) as sock:
            assert round_trip_s(sock) < 0.3


def test_timeout_zero_holds_until_removed_then_closes(
    client: ProxyClient, echo_server: TcpServer
) -> None:
    proxy = client.create_proxy("hold", echo_server.address)
    client.add_toxic("hold", "timeout", {"timeout": 0})
    with connect(proxy.port, timeout_s=0.5) as sock:
        sock.sendall(b"anyone there?")
        with pytest.raises(TimeoutError):
            sock.recv(100)
        client.remove_toxic("hold", "timeout_downstream")
        sock.settimeout(5)
        assert closed_by_peer(sock)


def test_timeout_closes_after_the_delay(client: ProxyClient, echo_server: TcpServer) -> None:
    proxy = client.create_proxy("tmo", echo_server.address)
    client.add_toxic("tmo", "timeout", {"timeout": 300})
    start = time.perf_counter()
    with connect(proxy.port) as sock:
        sock.sendall(b"hello")
        assert closed_by_peer(sock)
    assert 0.25 <= time.perf_counter() - start <= 2.0


def test_reset_peer_gives_econnreset(client: ProxyClient, echo_server: TcpServer) -> None:
    proxy = client.create_proxy("rst", echo_server.address)
    client.add_toxic("rst", "reset_peer", {"timeout": 100}, stream="upstream")
    with connect(proxy.port) as sock:
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            sock.recv(100)
            sock.recv(100)  # in case the first call returned before the RST


def test_bandwidth_limits_the_rate(client: ProxyClient, echo_server: TcpServer) -> None:
    proxy = client.create_proxy("bw", echo_server.address)
    client.add_toxic("bw", "bandwidth", {"rate": 100})  # 100 KB/s
    payload = os.urandom(50_000)
    with connect(proxy.port) as sock:
        start = time.perf_counter()
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        elapsed = time.perf_counter() - start
    assert 0.4 <= elapsed <= 2.0, elapsed  # 0.5 s at exactly 100 KB/s


def test_limit_data_closes_after_n_bytes(client: ProxyClient, echo_server: TcpServer) -> None:
    proxy = client.create_proxy("lim", echo_server.address)
    client.add_toxic("lim", "limit_data", {"bytes": 1000})
    with connect(proxy.port) as sock:
        sock.sendall(b"x" * 5000)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            received = recv_all(sock)
    assert received == b"x" * 1000


def test_slicer_delivers_every_byte(client: ProxyClient, echo_server: TcpServer) -> None:
    proxy = client.create_proxy("slice", echo_server.address)
    client.add_toxic("slice", "slicer", {"average_size": 100, "size_variation": 50, "delay": 100})
    payload = os.urandom(20_000)
    with connect(proxy.port) as sock:
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload


def test_slow_close_delays_the_fin(client: ProxyClient, echo_server: TcpServer) -> None:
    proxy = client.create_proxy("slowc", echo_server.address)
    client.add_toxic("slowc", "slow_close", {"delay": 300})
    with connect(proxy.port) as sock:
        sock.sendall(b"bye")
        assert recv_exactly(sock, 3) == b"bye"
        start = time.perf_counter()
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == b""
        elapsed = time.perf_counter() - start
    assert 0.28 <= elapsed <= 2.0, elapsed


def test_ttl_expiry_removes_the_toxic_by_itself(
    client: ProxyClient, echo_server: TcpServer, proxy_url: str
) -> None:
    proxy = client.create_proxy("ttl", echo_server.address)
    toxic = client.add_toxic("ttl", "latency", {"latency": 200}, ttl_s=0.6)
    assert toxic.ttl_s == 0.6
    assert toxic.ttl_remaining_s is not None and 0 < toxic.ttl_remaining_s <= 0.6
    with connect(proxy.port) as sock:
        assert round_trip_s(sock) >= 0.19
        deadline = time.monotonic() + 5
        while client.list_toxics("ttl") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.list_toxics("ttl") == []
        assert round_trip_s(sock) < 0.15
    with urllib.request.urlopen(proxy_url + "/events", timeout=5) as response:
        events = json.loads(response.read())
    assert any(e["event"] == "toxic_expired" and e["proxy"] == "ttl" for e in events)
