"""Toxiproxy compatibility where clients notice: browser refusal, toxic updates, noop, errors.

Expected values are Toxiproxy 2.x's own (``api.go``, ``toxic_collection.go``).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from proxy_testkit import TcpServer, connect, recv_exactly

from paychaos.chaos.proxy.client import ProxyClient

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def send(
    url: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    user_agent: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url + path, data=data, method=method)
    if user_agent is not None:
        request.add_header("User-Agent", user_agent)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def call(url: str, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
    status, _headers, raw = send(url, method, path, body, **kwargs)
    return status, json.loads(raw) if raw else None


# -- browsers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/version", None),
        ("GET", "/proxies", None),
        ("POST", "/proxies", {"name": "csrf", "upstream": "127.0.0.1:9"}),
        ("POST", "/reset", None),
    ],
)
def test_a_browser_user_agent_is_refused_with_a_403(
    client: ProxyClient, proxy_url: str, method: str, path: str, body: Any
) -> None:
    status, headers, raw = send(proxy_url, method, path, body, user_agent=FIREFOX)
    assert status == 403
    assert raw == b"User agent not allowed\n"
    assert headers["Content-Type"].startswith("text/plain")
    assert "csrf" not in client.list()  # refused before anything happened


@pytest.mark.parametrize("agent", ["curl/8.5.0", "toxiproxy-cli", "Python-urllib/3.11", ""])
def test_other_user_agents_are_served(proxy_url: str, agent: str) -> None:
    assert call(proxy_url, "GET", "/proxies", user_agent=agent)[0] == 200


# -- toxic updates ----------------------------------------------------------------------


def test_toxic_update_ignores_name_type_and_stream(
    client: ProxyClient, proxy_url: str, echo_server: TcpServer
) -> None:
    client.create_proxy("upd", echo_server.address)
    client.add_toxic("upd", "latency", {"latency": 100, "jitter": 10})
    body = {
        "name": "renamed",
        "type": "timeout",
        "stream": "upstream",
        "toxicity": 0.5,
        "attributes": {"latency": 300},
    }
    status, toxic = call(proxy_url, "POST", "/proxies/upd/toxics/latency_downstream", body)
    assert status == 200
    assert (toxic["name"], toxic["type"], toxic["stream"]) == (
        "latency_downstream",
        "latency",
        "downstream",
    )
    assert toxic["toxicity"] == 0.5 and toxic["attributes"] == {"latency": 300, "jitter": 10}
    assert [t.name for t in client.list_toxics("upd")] == ["latency_downstream"]
    assert call(proxy_url, "GET", "/proxies/upd/toxics/renamed")[0] == 404


def test_a_toxic_read_back_and_sent_as_an_update_is_accepted(
    client: ProxyClient, proxy_url: str, echo_server: TcpServer
) -> None:
    client.create_proxy("rt", echo_server.address)
    client.add_toxic("rt", "latency", {"latency": 100}, ttl_s=60)
    status, shown = call(proxy_url, "GET", "/proxies/rt/toxics/latency_downstream")
    assert status == 200 and shown["ttl_s"] == 60 and shown["expires_at"] is not None
    shown["attributes"]["latency"] = 250
    status, updated = call(proxy_url, "PATCH", "/proxies/rt/toxics/latency_downstream", shown)
    assert status == 200, updated
    assert updated["attributes"]["latency"] == 250
    assert updated["expires_at"] == shown["expires_at"]  # the expiry was not restarted


def test_updating_a_missing_toxic_is_404_whatever_the_body(
    client: ProxyClient, proxy_url: str, echo_server: TcpServer
) -> None:
    client.create_proxy("miss", echo_server.address)
    body = {"name": "x", "type": "bogus", "stream": "sideways"}
    assert call(proxy_url, "POST", "/proxies/miss/toxics/x", body) == (
        404,
        {"error": "toxic not found", "status": 404},
    )


# -- noop -------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_noop_toxic_passes_data_through_unchanged(
    client: ProxyClient, proxy_url: str, echo_server: TcpServer, stream: str
) -> None:
    proxy = client.create_proxy("noop", echo_server.address)
    status, toxic = call(
        proxy_url,
        "POST",
        "/proxies/noop/toxics",
        {"name": "foobar", "type": "noop", "stream": stream},
    )
    assert status == 200
    assert (toxic["name"], toxic["type"], toxic["stream"], toxic["toxicity"]) == (
        "foobar",
        "noop",
        stream,
        1.0,
    )
    assert toxic["attributes"] == {}
    payload = os.urandom(256 * 1024)
    with connect(proxy.port) as sock:
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload


def test_noop_in_a_chain_with_latency(
    client: ProxyClient, proxy_url: str, echo_server: TcpServer
) -> None:
    proxy = client.create_proxy("chain", echo_server.address)
    assert call(proxy_url, "POST", "/proxies/chain/toxics", {"type": "noop"})[0] == 200
    client.add_toxic("chain", "latency", {"latency": 100})
    payload = os.urandom(100_000)
    with connect(proxy.port) as sock:
        start = time.perf_counter()
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        assert time.perf_counter() - start >= 0.1


# -- error wording ----------------------------------------------------------------------

INVALID_STREAM = "stream was invalid, can be either upstream or downstream"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("GET", "/proxies/nope", None, 404, "proxy not found"),
        ("DELETE", "/proxies/nope", None, 404, "proxy not found"),
        ("POST", "/proxies/nope/toxics", {"type": "latency"}, 404, "proxy not found"),
        (
            "POST",
            "/proxies",
            {"name": "base", "upstream": "127.0.0.1:9"},
            409,
            "proxy already exists",
        ),
        ("GET", "/proxies/base/toxics/nope", None, 404, "toxic not found"),
        ("DELETE", "/proxies/base/toxics/nope", None, 404, "toxic not found"),
        ("POST", "/proxies/base/toxics", {"type": "latency"}, 409, "toxic already exists"),
        # Toxiproxy checks the name is free before it reads the attributes.
        (
            "POST",
            "/proxies/base/toxics",
            {"type": "latency", "attributes": {"latency": -1}},
            409,
            "toxic already exists",
        ),
        ("POST", "/proxies/base/toxics", {"type": "lightning"}, 400, "invalid toxic type"),
        ("POST", "/proxies/base/toxics", {"name": "t"}, 400, "invalid toxic type"),
        ("POST", "/proxies/base/toxics", {"type": "latency", "stream": "up"}, 400, INVALID_STREAM),
        # Toxiproxy checks the stream before the type.
        (
            "POST",
            "/proxies/base/toxics",
            {"type": "lightning", "stream": "up"},
            400,
            INVALID_STREAM,
        ),
        ("POST", "/proxies", {"upstream": "127.0.0.1:9"}, 400, "missing required field: name"),
        ("POST", "/proxies", {"name": "x"}, 400, "missing required field: upstream"),
        (
            "POST",
            "/populate",
            [{"name": "a", "upstream": "127.0.0.1:9"}, {"name": "b"}],
            400,
            "missing required field: upstream at proxy 2",
        ),
    ],
)
def test_errors_use_toxiproxys_words(
    client: ProxyClient,
    proxy_url: str,
    echo_server: TcpServer,
    method: str,
    path: str,
    body: Any,
    status: int,
    error: str,
) -> None:
    client.create_proxy("base", echo_server.address)
    client.add_toxic("base", "latency", {"latency": 0})
    got_status, got = call(proxy_url, method, path, body)
    assert (got_status, got["error"], got["status"]) == (status, error, status)
    assert set(got) <= {"error", "status", "detail", "proxies"}


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/proxies", b"{not json"),
        ("/proxies/base/toxics", b"[1, 2"),
        (
            "/proxies/base/toxics",
            b'{"name": "n", "type": "latency", "attributes": {"latency": -5}}',
        ),
        ("/proxies/base/toxics", b'{"name": "n", "type": "latency", "toxicity": 2}'),
        ("/proxies/base/toxics/latency_downstream", b'{"attributes": {"latency": "slow"}}'),
        ("/proxies/base", b'{"upstream": "127.0.0.1"}'),
        ("/populate", b'{"name": "x"}'),
    ],
)
def test_bodies_it_cannot_use_are_bad_request_body(
    client: ProxyClient, proxy_url: str, echo_server: TcpServer, path: str, raw: bytes
) -> None:
    client.create_proxy("base", echo_server.address)
    client.add_toxic("base", "latency", {"latency": 0})
    status, got = call(proxy_url, "POST", path, raw=raw)
    assert status == 400 and got["status"] == 400
    assert got["error"].startswith("bad request body: ") and len(got["error"]) > 20, got
