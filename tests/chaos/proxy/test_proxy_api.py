"""The control API: Toxiproxy's status codes and error bodies, validation, populate, reset."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from proxy_testkit import TcpServer

from paychaos.chaos.proxy import start_proxy_server
from paychaos.chaos.proxy.client import ProxyClient, ProxyRequestFailed, ProxyRequestInvalid
from paychaos.contracts.errors import FaultInjectionFailed, InvalidFault


def call(url: str, method: str, path: str, body: Any = None, raw: bytes | None = None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_proxy_lifecycle_status_codes(
    client: ProxyClient, proxy_url: str, echo_server: TcpServer
) -> None:
    body = {"name": "api", "listen": "127.0.0.1:0", "upstream": echo_server.address}
    status, created = call(proxy_url, "POST", "/proxies", body)
    assert status == 201
    assert created["enabled"] is True and created["toxics"] == []
    assert created["listen"].startswith("127.0.0.1:") and not created["listen"].endswith(":0")
    assert call(proxy_url, "POST", "/proxies", body) == (
        409,
        {"error": "proxy already exists", "status": 409},
    )
    assert call(proxy_url, "GET", "/proxies/nope") == (
        404,
        {"error": "proxy not found", "status": 404},
    )
    status, listing = call(proxy_url, "GET", "/proxies")
    assert status == 200 and listing["api"]["upstream"] == echo_server.address
    status, toxic = call(
        proxy_url, "POST", "/proxies/api/toxics", {"type": "latency", "attributes": {"latency": 5}}
    )
    assert status == 200
    assert (toxic["name"], toxic["stream"], toxic["toxicity"]) == (
        "latency_downstream",
        "downstream",
        1.0,
    )
    assert call(proxy_url, "POST", "/proxies/api/toxics", {"type": "latency"})[0] == 409
    assert call(proxy_url, "GET", "/proxies/api/toxics/nope") == (
        404,
        {"error": "toxic not found", "status": 404},
    )
    status, updated = call(
        proxy_url, "POST", "/proxies/api/toxics/latency_downstream", {"attributes": {"jitter": 2}}
    )
    assert status == 200 and updated["attributes"] == {"latency": 5, "jitter": 2}
    assert call(proxy_url, "DELETE", "/proxies/api/toxics/latency_downstream") == (204, None)
    assert call(proxy_url, "DELETE", "/proxies/api") == (204, None)
    assert call(proxy_url, "DELETE", "/proxies/api")[0] == 404


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/proxies", {"name": "x"}, "missing required field: upstream"),
        ("/proxies", {"upstream": "127.0.0.1:1"}, "missing required field: name"),
        (
            "/proxies",
            {"name": "x", "upstream": "10.1.2.3:5432"},
            "upstream: 10.1.2.3 is not a loopback",
        ),
        ("/proxies", {"name": "x", "upstream": "db.example.com:5432"}, "upstream: db.example.com"),
        ("/proxies", {"name": "x", "upstream": "127.0.0.1:1", "listen": "0.0.0.0:0"}, "listen:"),
        ("/proxies", {"name": "x", "upstream": "127.0.0.1"}, "upstream: expected 'host:port'"),
        ("/proxies/base/toxics", {"type": "lightning"}, "invalid toxic type (got 'lightning'"),
        (
            "/proxies/base/toxics",
            {"type": "latency", "attributes": {"latency": "abc"}},
            "attributes.latency must be a non-negative integer",
        ),
        (
            "/proxies/base/toxics",
            {"type": "latency", "attributes": {"latency": -5}},
            "attributes.latency",
        ),
        (
            "/proxies/base/toxics",
            {"type": "latency", "attributes": {"rate": 5}},
            "attributes.rate: unknown attribute",
        ),
        ("/proxies/base/toxics", {"type": "latency", "stream": "sideways"}, "stream was invalid"),
        (
            "/proxies/base/toxics",
            {"type": "latency", "toxicity": 1.5},
            "toxicity must be between 0 and 1",
        ),
        (
            "/proxies/base/toxics",
            {"type": "slow_close", "toxicity_mode": "per_chunk"},
            "per_chunk is not supported",
        ),
        ("/proxies/base/toxics", {"type": "latency", "ttl_s": 0}, "ttl_s must be greater than 0"),
        (
            "/proxies/base/toxics",
            {"type": "latency", "expires_at": 1.0},
            "expires_at is in the past",
        ),
        ("/proxies/base/toxics", ["not", "an", "object"], "bad request body"),
    ],
)
def test_bad_input_is_400_with_a_message(
    client: ProxyClient, proxy_url: str, echo_server: TcpServer, path: str, body: Any, expected: str
) -> None:
    client.create_proxy("base", echo_server.address)
    status, error = call(proxy_url, "POST", path, body)
    assert status == 400 and error["status"] == 400
    assert expected in f"{error['error']} ({error.get('detail')})"
    assert client.list_toxics("base") == []


def test_bad_json_is_400(client: ProxyClient, proxy_url: str) -> None:
    status, error = call(proxy_url, "POST", "/proxies", raw=b"{not json")
    assert status == 400 and error["error"].startswith("bad request body")


def test_populate_validates_everything_first_then_creates(
    client: ProxyClient, proxy_url: str, echo_server: TcpServer
) -> None:
    good = {"name": "p1", "listen": "127.0.0.1:0", "upstream": echo_server.address}
    bad = {"name": "p2", "listen": "127.0.0.1:0", "upstream": "10.0.0.1:1"}
    status, error = call(proxy_url, "POST", "/populate", [good, bad])
    assert status == 400 and "proxy 2: upstream: 10.0.0.1" in error["error"]
    assert client.list() == {}
    status, result = call(proxy_url, "POST", "/populate", [good])
    assert status == 201 and [p["name"] for p in result["proxies"]] == ["p1"]


def test_reset_enables_proxies_and_removes_toxics(
    client: ProxyClient, echo_server: TcpServer
) -> None:
    client.create_proxy("r", echo_server.address)
    client.add_toxic("r", "latency", {"latency": 100})
    client.update_proxy("r", enabled=False)
    client.reset()
    proxy = client.get_proxy("r")
    assert proxy.enabled is True and proxy.toxics == ()


def test_client_converts_errors(client: ProxyClient, echo_server: TcpServer) -> None:
    client.create_proxy("c", echo_server.address)
    with pytest.raises(InvalidFault, match="invalid toxic type"):
        client.add_toxic("c", "bogus")
    with pytest.raises(FaultInjectionFailed, match="proxy not found") as not_found:
        client.add_toxic("missing", "latency")
    assert isinstance(not_found.value, ProxyRequestFailed) and not_found.value.status == 404
    with pytest.raises(FaultInjectionFailed, match="proxy already exists"):
        client.create_proxy("c", echo_server.address)
    with pytest.raises(ProxyRequestInvalid):
        client.create_proxy("d", "192.0.2.1:80")
    with pytest.raises(ProxyRequestFailed, match="cannot reach") as unreachable:
        ProxyClient("http://127.0.0.1:9", timeout_s=1).list()
    assert unreachable.value.status == 0


def test_allow_non_loopback_accepts_remote_upstreams() -> None:
    with start_proxy_server(allow_non_loopback=True) as server:
        proxy = ProxyClient(server.url).create_proxy("remote", "192.0.2.1:5432")
        assert proxy.upstream == "192.0.2.1:5432"


def test_version_documents_the_extensions(proxy_url: str) -> None:
    status, version = call(proxy_url, "GET", "/version")
    assert status == 200
    assert {"toxicity_mode", "ttl_s", "expires_at"} <= set(version["extensions"])
