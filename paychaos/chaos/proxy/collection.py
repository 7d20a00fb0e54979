"""The set of proxies a fault-proxy server runs, with Toxiproxy's collection semantics."""

from __future__ import annotations

import json

from paychaos.chaos.proxy.model import (
    ERR_BAD_REQUEST_BODY,
    ERR_MISSING_FIELD,
    ERR_PROXY_ALREADY_EXISTS,
    ERR_PROXY_NOT_FOUND,
    ApiError,
    ProxySpec,
    bad_request,
    parse_proxy,
)
from paychaos.chaos.proxy.proxy import EventLog, Proxy


class ProxyCollection:
    """Named proxies: create, update, delete, populate, reset.

    ``allow_non_loopback`` False (the default) refuses listen and upstream
    addresses outside loopback, with a 400 naming the field.
    """

    def __init__(self, *, allow_non_loopback: bool = False, events: EventLog | None = None) -> None:
        self.allow_non_loopback = allow_non_loopback
        self.events = events or EventLog()
        self.proxies: dict[str, Proxy] = {}

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(404, ERR_PROXY_NOT_FOUND)
        return proxy

    async def create(self, body: object) -> Proxy:
        spec = parse_proxy(body, allow_non_loopback=self.allow_non_loopback)
        if spec.name in self.proxies:
            raise ApiError(409, ERR_PROXY_ALREADY_EXISTS)
        return await self._add(spec)

    async def _add(self, spec: ProxySpec) -> Proxy:
        proxy = Proxy(spec, self.events)
        if spec.enabled:
            await proxy.start()  # raises before the proxy is registered
        self.proxies[spec.name] = proxy
        return proxy

    async def update(self, name: str, body: object) -> Proxy:
        proxy = self.get(name)
        spec = parse_proxy(body, allow_non_loopback=self.allow_non_loopback, current=proxy.spec())
        await proxy.update(spec)
        return proxy

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        del self.proxies[name]
        proxy.remove_all_toxics()
        await proxy.stop()

    async def populate(self, body: object) -> list[Proxy]:
        """Create or replace a list of proxies; all entries are validated before any change.

        A proxy that exists with the same listen and upstream is kept as it is.
        """
        if not isinstance(body, list):
            raise bad_request("populate expects a JSON array of proxies")
        specs: list[ProxySpec] = []
        for index, item in enumerate(body):
            try:
                specs.append(parse_proxy(item, allow_non_loopback=self.allow_non_loopback))
            except ApiError as exc:
                raise _at_proxy(exc, index + 1) from exc
        names = [spec.name for spec in specs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise bad_request(f"duplicate proxy name {json.dumps(duplicates[0])}")
        result: list[Proxy] = []
        for spec in specs:
            existing = self.proxies.get(spec.name)
            if existing is not None:
                same_listen = spec.listen in (existing.listen, existing.requested_listen)
                if same_listen and spec.upstream == existing.upstream:
                    result.append(existing)
                    continue
                await self.delete(spec.name)
            result.append(await self._add(spec))
        return result

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic (Toxiproxy's ``POST /reset``)."""
        for proxy in list(self.proxies.values()):
            proxy.remove_all_toxics()
            await proxy.start()

    async def close(self) -> None:
        """Remove every toxic and stop every proxy (server shutdown)."""
        for proxy in list(self.proxies.values()):
            proxy.remove_all_toxics()
            await proxy.stop()


def _at_proxy(exc: ApiError, number: int) -> ApiError:
    """Say which populate entry (1-based) was wrong, in Toxiproxy's words where it has them."""
    if exc.message.startswith(ERR_MISSING_FIELD):  # "missing required field: name at proxy 1"
        return ApiError(exc.status, f"{exc.message} at proxy {number}", exc.detail)
    prefix = f"{ERR_BAD_REQUEST_BODY}: "
    reason = exc.message.removeprefix(prefix)
    return ApiError(exc.status, f"{prefix}proxy {number}: {reason}", exc.detail)
