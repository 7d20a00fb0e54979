"""The fault proxy: a TCP proxy with a Toxiproxy-compatible HTTP control API.

It sits in the app → PostgreSQL and app → gateway paths and injects network
faults ("toxics") on demand: ``latency``, ``timeout``, ``reset_peer``,
``bandwidth``, ``slow_close``, ``slicer``, ``limit_data`` (and ``noop``), each
on the ``upstream`` (client → server) or ``downstream`` stream, with
Toxiproxy 2.x's routes, JSON fields, status codes and error messages (and its
refusal of browsers: 403 to a ``Mozilla/`` user agent). Run it with::

    python -m paychaos.chaos.proxy --host 127.0.0.1 --port 8474 [--config proxies.json]

and drive it with :class:`ProxyClient` (or any Toxiproxy client).

Extensions to Toxiproxy (documented in ``GET /version`` and listed in every
toxic's JSON under ``extensions``):

- ``toxicity_mode``: ``"per_connection"`` (default, Toxiproxy's rule: toxicity
  is rolled once when a toxic meets a connection) or ``"per_chunk"``: rolled
  for every chunk read from the socket. With a pooled database client that
  keeps a few long-lived connections, per-connection toxicity cannot make
  "30 % of queries slow"; per-chunk can, since a PostgreSQL query is typically
  one chunk. Supported by latency, timeout, reset_peer, bandwidth and slicer.
- ``ttl_s`` / ``expires_at``: the proxy removes the toxic by itself when it
  expires, so a fault never outlives its TTL even if the controller that
  added it was killed. ``GET`` shows ``ttl_remaining_s``.
- ``GET /healthz``, ``GET /metrics`` (``chaos_fault_active{fault,target}``,
  ``proxy_connections_total``, ``proxy_bytes_total``,
  ``proxy_active_connections``) and ``GET /events`` (toxic added / updated /
  removed / expired, also logged as JSON lines).

Both extension fields can be given at the top level of the toxic or inside
``attributes`` (for Toxiproxy clients that only send attributes)::

    client.add_toxic("db", "latency", {"latency": 200}, toxicity=0.3,
                     toxicity_mode="per_chunk", ttl_s=60)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paychaos.chaos.proxy.client import (
        ProxyClient,
        ProxyInfo,
        ProxyRequestFailed,
        ProxyRequestInvalid,
        ToxicInfo,
    )
    from paychaos.chaos.proxy.server import ProxyServer, RunningProxyServer, start_proxy_server

# Imported on first use (PEP 562), so that ``python -m paychaos.chaos.proxy`` does not load
# the client's HTTP stack (urllib, http.client, email: ~2.5 MiB) into the proxy process.
_EXPORTS = {
    "ProxyClient": "paychaos.chaos.proxy.client",
    "ProxyInfo": "paychaos.chaos.proxy.client",
    "ProxyRequestFailed": "paychaos.chaos.proxy.client",
    "ProxyRequestInvalid": "paychaos.chaos.proxy.client",
    "ToxicInfo": "paychaos.chaos.proxy.client",
    "ProxyServer": "paychaos.chaos.proxy.server",
    "RunningProxyServer": "paychaos.chaos.proxy.server",
    "start_proxy_server": "paychaos.chaos.proxy.server",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ProxyClient",
    "ProxyInfo",
    "ProxyRequestFailed",
    "ProxyRequestInvalid",
    "ProxyServer",
    "RunningProxyServer",
    "ToxicInfo",
    "start_proxy_server",
]
