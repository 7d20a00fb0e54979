"""A small synchronous client of the fault proxy's (Toxiproxy-compatible) API.

HTTP errors become paychaos errors carrying the server's message: 400 →
:class:`ProxyRequestInvalid` (an ``InvalidFault``), anything else, including an
unreachable server → :class:`ProxyRequestFailed` (a ``FaultInjectionFailed``).

Example::

    client = ProxyClient("http://127.0.0.1:8474")
    db = client.create_proxy("db", upstream="127.0.0.1:5432")
    client.add_toxic("db", "latency", {"latency": 200}, toxicity=0.3,
                     toxicity_mode="per_chunk", ttl_s=60)
    ...
    client.reset()
"""

from __future__ import annotations

import builtins
import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from paychaos.contracts.errors import FaultInjectionFailed, InvalidFault

DEFAULT_URL = "http://127.0.0.1:8474"


class ProxyRequestInvalid(InvalidFault):
    """The fault proxy refused the request as invalid (HTTP 400)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ProxyRequestFailed(FaultInjectionFailed):
    """The fault proxy could not do it (404, 409, 5xx) or could not be reached (status 0)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ToxicInfo:
    """A toxic as the server reports it."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: Mapping[str, int]
    toxicity_mode: str = "per_connection"
    ttl_s: float | None = None
    expires_at: float | None = None
    ttl_remaining_s: float | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToxicInfo:
        return cls(
            name=data["name"],
            type=data["type"],
            stream=data["stream"],
            toxicity=float(data["toxicity"]),
            attributes=dict(data.get("attributes") or {}),
            toxicity_mode=data.get("toxicity_mode", "per_connection"),
            ttl_s=data.get("ttl_s"),
            expires_at=data.get("expires_at"),
            ttl_remaining_s=data.get("ttl_remaining_s"),
        )


@dataclass(frozen=True)
class ProxyInfo:
    """A proxy as the server reports it; ``listen`` is the bound ``host:port``."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[ToxicInfo, ...] = field(default_factory=tuple)

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProxyInfo:
        return cls(
            name=data["name"],
            listen=data["listen"],
            upstream=data["upstream"],
            enabled=bool(data["enabled"]),
            toxics=tuple(ToxicInfo.from_json(t) for t in data.get("toxics") or ()),
        )


class ProxyClient:
    """Talks to one fault proxy (or a real Toxiproxy, minus the extension fields)."""

    def __init__(self, url: str = DEFAULT_URL, *, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _request(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        where = f"fault proxy {method} {path}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                raw_error = exc.read()
            try:
                decoded = json.loads(raw_error)
                message = str(decoded["error"])
                if decoded.get("detail"):  # this proxy's explanation beside Toxiproxy's wording
                    message = f"{message} ({decoded['detail']})"
            except (ValueError, KeyError, TypeError, AttributeError):
                message = raw_error.decode(errors="replace").strip() or exc.reason
            if exc.code == 400:
                raise ProxyRequestInvalid(f"{where}: {message}") from exc
            raise ProxyRequestFailed(f"{where}: {message} (HTTP {exc.code})", exc.code) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ProxyRequestFailed(f"{where}: cannot reach {self.url}: {exc}", 0) from exc
        return json.loads(raw) if raw else None

    # -- server ---------------------------------------------------------------------
    def version(self) -> str:
        return str(self._request("GET", "/version")["version"])

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._request("POST", "/reset")

    # -- proxies ----------------------------------------------------------------------
    def list(self) -> dict[str, ProxyInfo]:
        return {
            name: ProxyInfo.from_json(p) for name, p in self._request("GET", "/proxies").items()
        }

    def create_proxy(
        self, name: str, upstream: str, listen: str = "127.0.0.1:0", *, enabled: bool = True
    ) -> ProxyInfo:
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        return ProxyInfo.from_json(self._request("POST", "/proxies", body))

    def get_proxy(self, name: str) -> ProxyInfo:
        return ProxyInfo.from_json(self._request("GET", f"/proxies/{quote(name)}"))

    def update_proxy(
        self,
        name: str,
        *,
        enabled: bool | None = None,
        listen: str | None = None,
        upstream: str | None = None,
    ) -> ProxyInfo:
        changes = {"enabled": enabled, "listen": listen, "upstream": upstream}
        body = {key: value for key, value in changes.items() if value is not None}
        return ProxyInfo.from_json(self._request("POST", f"/proxies/{quote(name)}", body))

    def delete_proxy(self, name: str) -> None:
        self._request("DELETE", f"/proxies/{quote(name)}")

    def populate(self, proxies: Iterable[Mapping[str, Any]]) -> builtins.list[ProxyInfo]:
        result = self._request("POST", "/populate", list(proxies))
        return [ProxyInfo.from_json(p) for p in result["proxies"]]

    # -- toxics -----------------------------------------------------------------------
    def add_toxic(
        self,
        proxy: str,
        type: str,
        attributes: Mapping[str, int] | None = None,
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
        ttl_s: float | None = None,
        toxicity_mode: str = "per_connection",
        name: str | None = None,
    ) -> ToxicInfo:
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
            "toxicity_mode": toxicity_mode,
        }
        if name is not None:
            body["name"] = name
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return ToxicInfo.from_json(self._request("POST", f"/proxies/{quote(proxy)}/toxics", body))

    def update_toxic(
        self,
        proxy: str,
        name: str,
        attributes: Mapping[str, int] | None = None,
        *,
        toxicity: float | None = None,
        ttl_s: float | None = None,
    ) -> ToxicInfo:
        body: dict[str, Any] = {"attributes": dict(attributes or {})}
        if toxicity is not None:
            body["toxicity"] = toxicity
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        path = f"/proxies/{quote(proxy)}/toxics/{quote(name)}"
        return ToxicInfo.from_json(self._request("POST", path, body))

    def get_toxic(self, proxy: str, name: str) -> ToxicInfo:
        path = f"/proxies/{quote(proxy)}/toxics/{quote(name)}"
        return ToxicInfo.from_json(self._request("GET", path))

    def list_toxics(self, proxy: str) -> builtins.list[ToxicInfo]:
        return [
            ToxicInfo.from_json(t) for t in self._request("GET", f"/proxies/{quote(proxy)}/toxics")
        ]

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._request("DELETE", f"/proxies/{quote(proxy)}/toxics/{quote(name)}")
