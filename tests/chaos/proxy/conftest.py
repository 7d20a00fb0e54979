"""Fixtures: the fault proxy as a real subprocess, a TCP echo server, a client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from proxy_testkit import TcpServer, echo, run_proxy_process

from paychaos.chaos.proxy.client import ProxyClient


@pytest.fixture(scope="session")
def proxy_url() -> Iterator[str]:
    with run_proxy_process() as (url, _proc):
        yield url


@pytest.fixture
def client(proxy_url: str) -> Iterator[ProxyClient]:
    """A client of the shared proxy process; every proxy is deleted after the test."""
    api = ProxyClient(proxy_url)
    try:
        yield api
    finally:
        for name in api.list():
            api.delete_proxy(name)


@pytest.fixture
def echo_server() -> Iterator[TcpServer]:
    server = TcpServer(echo)
    try:
        yield server
    finally:
        server.close()
