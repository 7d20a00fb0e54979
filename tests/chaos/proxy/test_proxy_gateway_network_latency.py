"""``gateway-network-latency`` on a real fault proxy: a latency toxic on the gateway's
proxy (not the database's), with the TTL held by the proxy, gone after revert and after
the controller closes; the bytes really arrive late."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from proxy_testkit import TcpServer

from paychaos.chaos.controller import ChaosController
from paychaos.chaos.proxy.client import ProxyClient
from paychaos.chaos.registry import default_registry
from paychaos.chaos.target import FaultTarget
from paychaos.contracts.errors import InvalidFault
from paychaos.contracts.faults import TTL_MARGIN_S
from paychaos.contracts.target import Actuators, Checkout, Target, Toxiproxy


def _target(tmp_path: Path, proxy_url: str) -> FaultTarget:
    return FaultTarget(
        Target(
            name="bare",
            checkout=Checkout(url="http://127.0.0.1:9"),
            actuators=Actuators(
                toxiproxy=Toxiproxy(
                    url=proxy_url, proxies={"database": "postgres", "gateway": "gateway"}
                )
            ),
            state_dir=tmp_path,
        )
    )


def _round_trip_ms(port: int) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.perf_counter()
        sock.sendall(b"ping")
        assert sock.recv(16) == b"ping"
        return (time.perf_counter() - started) * 1000


def test_gateway_network_latency_delays_the_gateway_proxy_only_and_is_reverted(
    tmp_path: Path, client: ProxyClient, echo_server: TcpServer
) -> None:
    gateway = client.create_proxy("gateway", echo_server.address)
    client.create_proxy("postgres", echo_server.address)
    controller = ChaosController(_target(tmp_path, client.url))
    fault = controller.prepare("gateway-network-latency", {"latency_ms": 200}, 30)
    assert fault.target_label() == "proxy/gateway" and fault.requires() == ["proxy.gateway"]
    entry = controller.inject(fault)
    try:
        (toxic,) = client.list_toxics("gateway")
        assert (toxic.type, toxic.stream, dict(toxic.attributes)) == (
            "latency",
            "downstream",
            {"latency": 200, "jitter": 0},
        )
        assert toxic.ttl_s is not None and 30 <= toxic.ttl_s <= 30 + TTL_MARGIN_S + 1
        assert client.list_toxics("postgres") == []  # the database's path is untouched
        assert _round_trip_ms(gateway.port) >= 190
    finally:
        controller.revert(entry.id)
    assert client.list_toxics("gateway") == []
    assert _round_trip_ms(gateway.port) < 150


def test_a_closed_controller_leaves_no_gateway_latency(
    tmp_path: Path, client: ProxyClient, echo_server: TcpServer
) -> None:
    client.create_proxy("gateway", echo_server.address)
    controller = ChaosController(_target(tmp_path, client.url))
    controller.inject(controller.prepare("gateway-network-latency", {"latency_ms": 50}, 30))
    assert client.list_toxics("gateway")
    controller.close()  # the runner's finally: every exit path
    assert client.list_toxics("gateway") == []


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"latency_ms": 0}, "latency_ms (--latency-ms) must be at least 1"),
        ({"latency_ms": 100, "jitter_ms": 200}, "jitter_ms (--jitter-ms) must not exceed"),
        ({"share": 0.5}, "unknown parameter 'share'"),
    ],
)
def test_gateway_network_latency_refuses_bad_parameters(raw: dict[str, int], needle: str) -> None:
    with pytest.raises(InvalidFault) as info:
        default_registry().get("gateway-network-latency").prepare(raw, 30)
    assert needle in str(info.value)
