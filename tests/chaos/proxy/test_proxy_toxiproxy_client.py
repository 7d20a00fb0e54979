"""Toxiproxy's own Python client (``toxiproxy-python``) drives this proxy."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from proxy_testkit import TcpServer, connect, round_trip_s
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer


@pytest.fixture
def toxiproxy(proxy_url: str) -> Iterator[Toxiproxy]:
    """The client keeps host/port on a class (global state): set it, then restore it."""
    saved = (APIConsumer.host, APIConsumer.port)
    parts = urlsplit(proxy_url)
    server = Toxiproxy()
    server.update_api_consumer(parts.hostname, parts.port)
    try:
        yield server
    finally:
        server.destroy_all()
        APIConsumer.host, APIConsumer.port = saved


def test_toxiproxy_python_client_round_trip(toxiproxy: Toxiproxy, echo_server: TcpServer) -> None:
    assert toxiproxy.running()
    assert toxiproxy.version()
    proxy = toxiproxy.create(upstream=echo_server.address, name="compat")
    assert proxy.enabled is True
    port = int(proxy.listen.rpartition(":")[2])
    proxy.add_toxic(type="latency", attributes={"latency": 200})
    assert set(proxy.toxics()) == {"latency_downstream"}
    assert proxy.get_toxic("latency_downstream").attributes["latency"] == 200
    with connect(port) as sock:
        assert 0.19 <= round_trip_s(sock) <= 0.4
        proxy.destroy_toxic("latency_downstream")
        assert round_trip_s(sock) < 0.15
    with proxy.down():
        assert toxiproxy.get_proxy("compat").enabled is False
    assert toxiproxy.get_proxy("compat").enabled is True
    assert proxy.destroy()
    assert toxiproxy.get_proxy("compat") is None
