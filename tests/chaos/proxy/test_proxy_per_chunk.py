"""The per_chunk extension on ONE long-lived, pooled-style connection."""

from __future__ import annotations

import socket
import struct
import time

from proxy_testkit import TcpServer, connect, recv_exactly, round_trip_s

from paychaos.chaos.proxy.client import ProxyClient

SLOW_S = 0.03


def pg_like_server(conn: socket.socket) -> None:
    """Answer each PostgreSQL-framed ``Q`` message with RowDescription..ReadyForQuery in one send."""
    while header := recv_exactly(conn, 5):
        if len(header) < 5:
            return
        kind, length = header[:1], struct.unpack("!I", header[1:])[0]
        query = recv_exactly(conn, length - 4)
        assert kind == b"Q", kind
        row = query.rstrip(b"\0")[-8:]
        response = (
            _msg(b"T", b"\x00\x01col\x00" + b"\x00" * 18)
            + _msg(b"D", b"\x00\x01" + struct.pack("!I", len(row)) + row)
            + _msg(b"C", b"SELECT 1\x00")
            + _msg(b"Z", b"I")
        )
        conn.sendall(response)


def _msg(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def _query(sock: socket.socket, index: int) -> float:
    query = f"SELECT * FROM payments WHERE id = {index:08d}".encode() + b"\0"
    frame = _msg(b"Q", query)
    start = time.perf_counter()
    sock.sendall(frame)
    received = b""
    while not received.endswith(_msg(b"Z", b"I")):
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        received += chunk
    assert f"{index:08d}".encode() in received
    return time.perf_counter() - start


def test_per_chunk_latency_hits_a_fraction_of_queries_on_one_connection(
    client: ProxyClient,
) -> None:
    server = TcpServer(pg_like_server)
    try:
        proxy = client.create_proxy("pg", server.address)
        toxic = client.add_toxic(
            "pg",
            "latency",
            {"latency": int(SLOW_S * 1000)},
            stream="upstream",
            toxicity=0.3,
            toxicity_mode="per_chunk",
        )
        assert toxic.toxicity_mode == "per_chunk"
        with connect(proxy.port) as sock:
            durations = [_query(sock, index) for index in range(200)]
    finally:
        server.close()
    slow = sum(1 for d in durations if d >= SLOW_S * 0.9)
    assert 0.15 <= slow / len(durations) <= 0.45, slow


def test_per_connection_toxicity_is_all_or_nothing_on_one_connection(
    client: ProxyClient, echo_server: TcpServer
) -> None:
    proxy = client.create_proxy("pooled", echo_server.address)
    client.add_toxic("pooled", "latency", {"latency": int(SLOW_S * 1000)}, toxicity=0.5)
    with connect(proxy.port) as sock:
        slow = [round_trip_s(sock) >= SLOW_S * 0.9 for _ in range(20)]
    assert all(slow) or not any(slow)


def test_per_chunk_via_attributes_for_toxiproxy_clients(
    client: ProxyClient, echo_server: TcpServer
) -> None:
    client.create_proxy("attrs", echo_server.address)
    toxic = client._request(
        "POST",
        "/proxies/attrs/toxics",
        {"type": "latency", "attributes": {"latency": 10, "toxicity_mode": "per_chunk"}},
    )
    assert toxic["toxicity_mode"] == "per_chunk"
    assert toxic["attributes"] == {"latency": 10, "jitter": 0}
    assert "toxicity_mode" in toxic["extensions"]
