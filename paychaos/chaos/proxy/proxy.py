"""Proxies and their toxics: listeners, live connections, toxic lifetimes (TTL).

A :class:`Proxy` owns one listening socket, the connections accepted on it,
and its toxics in creation order. Adding or removing a toxic applies to the
live connections at once. A toxic with an expiry is removed by the proxy
itself when it expires, so a fault never outlives its TTL even when the
controller that added it is gone. Every toxic change is an event in the
:class:`EventLog` (JSON log lines, plus a short in-memory history).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

from paychaos.chaos.proxy.link import ActiveToxic, Connection
from paychaos.chaos.proxy.model import (
    ERR_TOXIC_ALREADY_EXISTS,
    ERR_TOXIC_NOT_FOUND,
    IMMUTABLE_TOXIC_FIELDS,
    Address,
    ApiError,
    ProxySpec,
    Stream,
    ToxicSpec,
    parse_toxic,
    toxic_identity,
)

EVENT_LOGGER = "paychaos.chaos.proxy.events"

log = logging.getLogger("paychaos.chaos.proxy")


class EventLog:
    """Toxic added / updated / removed / expired events: logged as JSON and kept (last N)."""

    def __init__(self, logger: logging.Logger | None = None, keep: int = 1000) -> None:
        self._log = logger or logging.getLogger(EVENT_LOGGER)
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)
        #: (fault, target) pairs ever injected, so ``chaos_fault_active`` can report 0.
        self.faults_seen: set[tuple[str, str]] = set()

    def toxic_event(self, event: str, proxy: str, spec: ToxicSpec, **extra: Any) -> None:
        record: dict[str, Any] = {
            "event": event,
            "ts": time.time(),
            "proxy": proxy,
            "toxic": spec.name,
            "fault": spec.type,
            "target": f"proxy/{proxy}",
            "stream": spec.stream,
            "toxicity": spec.toxicity,
            "toxicity_mode": spec.toxicity_mode,
            "ttl_s": spec.ttl_s,
            "expires_at": spec.expires_at,
            "attributes": dict(spec.attributes),
            **extra,
        }
        self.recent.append(record)
        self.faults_seen.add((spec.type, f"proxy/{proxy}"))
        fields = {k: v for k, v in record.items() if k != "ts"}
        self._log.info("%s %s on proxy %s", event.replace("_", " "), spec.name, proxy, extra=fields)


class Proxy:
    """One named listener forwarding to one upstream, with its toxics."""

    def __init__(self, spec: ProxySpec, events: EventLog) -> None:
        self.name = spec.name
        self.requested_listen = spec.listen
        self.listen = spec.listen
        self.upstream: Address = spec.upstream
        self.enabled = False
        self.toxics: dict[str, ActiveToxic] = {}
        self.connections: set[Connection] = set()
        self.connections_total = 0
        self.bytes_by_stream: dict[str, int] = {"upstream": 0, "downstream": 0}
        self._events = events
        self._server: asyncio.AbstractServer | None = None
        self._expiry: dict[str, asyncio.TimerHandle] = {}

    # -- ConnectionOwner ------------------------------------------------------
    def toxics_for(self, stream: Stream) -> list[ActiveToxic]:
        return [toxic for toxic in self.toxics.values() if toxic.spec.stream == stream]

    def connection_closed(self, conn: Connection) -> None:
        self.connections.discard(conn)

    # -- listener -------------------------------------------------------------
    async def start(self) -> None:
        """Listen (idempotent). Raises ApiError 500 if the address cannot be bound."""
        if self.enabled:
            return
        loop = asyncio.get_running_loop()

        def accept() -> asyncio.Protocol:
            conn = Connection(self, loop)
            self.connections.add(conn)
            self.connections_total += 1
            return conn.client

        try:
            server = await loop.create_server(
                accept, self.listen.host, self.listen.port, reuse_address=True, backlog=1024
            )
        except OSError as exc:
            raise ApiError(500, f"listen: cannot listen on {self.listen}: {exc.strerror}") from exc
        host, port = server.sockets[0].getsockname()[:2]
        self.listen = Address(host, port)
        self._server = server
        self.enabled = True

    async def stop(self) -> None:
        """Stop listening and drop every connection (idempotent)."""
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self.connections):
            conn.abort()
        if server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    async def update(self, spec: ProxySpec) -> None:
        """Apply enabled/listen/upstream; a new address restarts the listener (like Toxiproxy)."""
        new_listen = spec.listen not in (self.listen, self.requested_listen)
        if new_listen or spec.upstream != self.upstream or not spec.enabled:
            await self.stop()
        if new_listen:
            self.requested_listen = self.listen = spec.listen
        self.upstream = spec.upstream
        if spec.enabled:
            await self.start()

    # -- toxics ---------------------------------------------------------------
    def get_toxic(self, name: str) -> ActiveToxic:
        toxic = self.toxics.get(name)
        if toxic is None:
            raise ApiError(404, ERR_TOXIC_NOT_FOUND)
        return toxic

    def create_toxic(self, body: object) -> ActiveToxic:
        """Validate and add a toxic, failing as Toxiproxy does: 409 before bad attributes."""
        name, _type, _stream = toxic_identity(body)
        if name in self.toxics:
            raise ApiError(409, ERR_TOXIC_ALREADY_EXISTS)
        return self.add_toxic(parse_toxic(body))

    def add_toxic(self, spec: ToxicSpec) -> ActiveToxic:
        if spec.name in self.toxics:
            raise ApiError(409, ERR_TOXIC_ALREADY_EXISTS)
        toxic = ActiveToxic(spec)
        self.toxics[spec.name] = toxic
        for conn in list(self.connections):
            conn.attach(toxic)
        self._schedule_expiry(spec)
        self._events.toxic_event("toxic_added", self.name, spec)
        return toxic

    def update_toxic(self, name: str, body: object) -> ActiveToxic:
        toxic = self.get_toxic(name)
        spec = parse_toxic(body, current=toxic.spec)
        if isinstance(body, dict):
            ignored = {
                key: body[key]
                for key in IMMUTABLE_TOXIC_FIELDS
                if key in body and body[key] != getattr(spec, key)
            }
            if ignored:
                log.warning(
                    "toxic %s on proxy %s: ignored %s in the update (fixed at creation; "
                    "remove the toxic and add a new one to change them)",
                    name,
                    self.name,
                    ", ".join(f"{key}={value!r}" for key, value in ignored.items()),
                )
        toxic.spec = spec  # live connections read the spec on every chunk
        self._schedule_expiry(spec)
        self._events.toxic_event("toxic_updated", self.name, spec)
        return toxic

    def remove_toxic(self, name: str, *, reason: str = "toxic_removed") -> None:
        toxic = self.get_toxic(name)
        del self.toxics[name]
        timer = self._expiry.pop(name, None)
        if timer is not None:
            timer.cancel()
        for conn in list(self.connections):
            conn.detach(toxic)
        self._events.toxic_event(reason, self.name, toxic.spec)

    def remove_all_toxics(self, *, reason: str = "toxic_removed") -> None:
        for name in list(self.toxics):
            self.remove_toxic(name, reason=reason)

    def _schedule_expiry(self, spec: ToxicSpec) -> None:
        old = self._expiry.pop(spec.name, None)
        if old is not None:
            old.cancel()
        if spec.expires_at is None:
            return
        delay_s = max(0.0, spec.expires_at - time.time())
        loop = asyncio.get_running_loop()
        self._expiry[spec.name] = loop.call_later(delay_s, self._expire, spec)

    def _expire(self, spec: ToxicSpec) -> None:
        toxic = self.toxics.get(spec.name)
        if toxic is not None and toxic.spec is spec:
            self._expiry.pop(spec.name, None)
            self.remove_toxic(spec.name, reason="toxic_expired")

    # -- JSON -----------------------------------------------------------------
    def spec(self) -> ProxySpec:
        return ProxySpec(self.name, self.listen, self.upstream, self.enabled)

    def to_json(self) -> dict[str, Any]:
        now = time.time()
        return {
            "name": self.name,
            "listen": str(self.listen),
            "upstream": str(self.upstream),
            "enabled": self.enabled,
            "toxics": [toxic.spec.to_json(now) for toxic in self.toxics.values()],
        }
