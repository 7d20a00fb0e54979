"""Bytes pass through unchanged, half-close works, disabling cuts connections, metrics count."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import threading
import urllib.request

import pytest
from proxy_testkit import (
    TcpServer,
    closed_by_peer,
    connect,
    recv_all,
    recv_exactly,
    round_trip_s,
    run_proxy_process,
)

from paychaos.chaos.proxy.client import ProxyClient
from paychaos.stack.service import free_port


def metrics_text(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        return response.read().decode()


def test_small_messages_pass_unchanged(client: ProxyClient, echo_server: TcpServer) -> None:
    proxy = client.create_proxy("echo", echo_server.address)
    with connect(proxy.port) as sock:
        for index in range(50):
            payload = f"message {index}".encode() * (index + 1)
            sock.sendall(payload)
            assert recv_exactly(sock, len(payload)) == payload


def test_ten_megabytes_pass_unchanged_both_ways(
    client: ProxyClient, echo_server: TcpServer
) -> None:
    proxy = client.create_proxy("bulk", echo_server.address)
    payload = os.urandom(10 * 1024 * 1024)
    with connect(proxy.port, timeout_s=30) as sock:
        sender = threading.Thread(target=lambda: (sock.sendall(payload), sock.shutdown(1)))
        sender.start()
        try:
            received = recv_all(sock)
        finally:
            sender.join(30)
    assert len(received) == len(payload)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


def test_half_close_delivers_the_rest_then_eof(client: ProxyClient, echo_server: TcpServer) -> None:
    proxy = client.create_proxy("half", echo_server.address)
    with connect(proxy.port) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == b"last words"


def test_disable_closes_connections_and_listener_enable_restores(
    client: ProxyClient, echo_server: TcpServer
) -> None:
    proxy = client.create_proxy("toggle", echo_server.address)
    sock = connect(proxy.port)
    try:
        round_trip_s(sock)
        assert client.update_proxy("toggle", enabled=False).enabled is False
        assert closed_by_peer(sock)
        with pytest.raises(ConnectionRefusedError):
            connect(proxy.port).close()
    finally:
        sock.close()
    again = client.update_proxy("toggle", enabled=True)
    assert again.listen == proxy.listen
    with connect(again.port) as sock2:
        round_trip_s(sock2)


def test_unreachable_upstream_closes_the_client(client: ProxyClient) -> None:
    proxy = client.create_proxy("nowhere", f"127.0.0.1:{free_port()}")
    with connect(proxy.port) as sock:
        assert closed_by_peer(sock)


def test_metrics_count_connections_bytes_and_faults(
    client: ProxyClient, echo_server: TcpServer, proxy_url: str
) -> None:
    proxy = client.create_proxy("metered", echo_server.address)
    with connect(proxy.port) as sock:
        round_trip_s(sock, b"x" * 100)
        client.add_toxic("metered", "latency", {"latency": 1})
        text = metrics_text(proxy_url)
        assert 'proxy_connections_total{proxy="metered"} 1.0' in text
        assert 'proxy_active_connections{proxy="metered"} 1.0' in text
        assert 'proxy_bytes_total{direction="upstream",proxy="metered"} 100.0' in text
        assert 'proxy_bytes_total{direction="downstream",proxy="metered"} 100.0' in text
        assert 'chaos_fault_active{fault="latency",target="proxy/metered"} 1.0' in text
    client.remove_toxic("metered", "latency_downstream")
    assert 'chaos_fault_active{fault="latency",target="proxy/metered"} 0.0' in metrics_text(
        proxy_url
    )


def test_sigterm_exits_cleanly_with_config_file(tmp_path, echo_server: TcpServer) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(
        f'[{{"name": "cfg", "listen": "127.0.0.1:0", "upstream": "{echo_server.address}"}}]'
    )
    with run_proxy_process("--config", str(config)) as (url, proc):
        listed = ProxyClient(url).list()
        assert listed["cfg"].upstream == echo_server.address
        with connect(listed["cfg"].port) as sock:
            round_trip_s(sock)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(10) == 0


def test_non_loopback_api_host_is_refused() -> None:
    with pytest.raises(RuntimeError, match="exited with 2"), run_proxy_process("--host", "0.0.0.0"):
        pass
