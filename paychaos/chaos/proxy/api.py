"""The HTTP control API: Toxiproxy 2.x's routes, fields and status codes, plus a few extras.

Toxiproxy routes: ``GET /version``, ``GET|POST /proxies``, ``POST /populate``,
``POST /reset``, ``GET|POST|PATCH|DELETE /proxies/{proxy}``,
``GET|POST /proxies/{proxy}/toxics``,
``GET|POST|PATCH|DELETE /proxies/{proxy}/toxics/{toxic}``. Errors are
``{"error": "<message>", "status": <code>}``.

Like Toxiproxy, it refuses browsers: a request whose ``User-Agent`` starts
with ``Mozilla/`` gets 403 ``User agent not allowed`` (plain text).

Extras: ``GET /healthz`` (200 ``ok``), ``GET /metrics`` (Prometheus text),
``GET /events`` (the recent toxic events, newest last).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from paychaos.chaos.proxy.collection import ProxyCollection
from paychaos.chaos.proxy.model import ApiError, bad_request

log = logging.getLogger("paychaos.chaos.proxy.api")

VERSION = "2.12.0-paychaos"

#: The extension fields, described in ``GET /version`` so a client can discover them.
EXTENSIONS_DOC: dict[str, str] = {
    "toxicity_mode": (
        "per_connection (Toxiproxy's behaviour: toxicity rolled once per connection) or "
        "per_chunk (rolled for every chunk read from the socket, e.g. one PostgreSQL query); "
        "top-level toxic field or attribute; per_chunk works for latency, timeout, "
        "reset_peer, bandwidth, slicer"
    ),
    "ttl_s": "seconds until the proxy removes the toxic by itself (top-level field or attribute)",
    "expires_at": "Unix time at which the proxy removes the toxic (alternative to ttl_s)",
    "ttl_remaining_s": "read-only: seconds left before expiry, in every toxic's JSON",
}

#: Toxiproxy answers 403 with this plain-text message to every User-Agent starting with
#: ``Mozilla/`` (every common browser's), so that a web page cannot drive it (CSRF).
BROWSER_USER_AGENT_PREFIX = "Mozilla/"
BROWSER_REFUSED = "User agent not allowed"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, separators=(",", ":")), status=status, content_type="application/json"
    )


@web.middleware
async def _stop_browsers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse browsers, as Toxiproxy does, so a web page cannot drive the API (CSRF)."""
    if request.headers.get("User-Agent", "").startswith(BROWSER_USER_AGENT_PREFIX):
        return web.Response(
            status=403,
            text=BROWSER_REFUSED + "\n",
            content_type="text/plain",
            headers={"X-Content-Type-Options": "nosniff"},
        )
    return await handler(request)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _json(exc.to_json(), exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json({"error": exc.reason.lower(), "status": exc.status}, exc.status)
    except Exception as exc:  # the API must answer, not drop the connection
        log.exception("control API error on %s %s", request.method, request.path)
        return _json({"error": f"internal error: {exc}", "status": 500}, 500)


async def _body(request: web.Request) -> object:
    text = await request.text()
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except ValueError as exc:
        raise bad_request(str(exc)) from exc


class ControlApi:
    """The routes, bound to one :class:`ProxyCollection` and one metrics registry."""

    def __init__(self, collection: ProxyCollection, registry: CollectorRegistry) -> None:
        self.collection = collection
        self.registry = registry

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_stop_browsers, _errors])
        r = app.router
        r.add_get("/version", self.version)
        r.add_get("/healthz", self.healthz)
        r.add_get("/metrics", self.metrics)
        r.add_get("/events", self.events)
        r.add_post("/reset", self.reset)
        r.add_post("/populate", self.populate)
        r.add_get("/proxies", self.proxy_index)
        r.add_post("/proxies", self.proxy_create)
        r.add_get("/proxies/{proxy}", self.proxy_show)
        r.add_post("/proxies/{proxy}", self.proxy_update)
        r.add_patch("/proxies/{proxy}", self.proxy_update)
        r.add_delete("/proxies/{proxy}", self.proxy_delete)
        r.add_get("/proxies/{proxy}/toxics", self.toxic_index)
        r.add_post("/proxies/{proxy}/toxics", self.toxic_create)
        r.add_get("/proxies/{proxy}/toxics/{toxic}", self.toxic_show)
        r.add_post("/proxies/{proxy}/toxics/{toxic}", self.toxic_update)
        r.add_patch("/proxies/{proxy}/toxics/{toxic}", self.toxic_update)
        r.add_delete("/proxies/{proxy}/toxics/{toxic}", self.toxic_delete)
        return app

    # -- service conventions ---------------------------------------------------
    async def version(self, request: web.Request) -> web.Response:
        return _json({"version": VERSION, "extensions": EXTENSIONS_DOC})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def events(self, request: web.Request) -> web.Response:
        return _json(list(self.collection.events.recent))

    # -- proxies -----------------------------------------------------------------
    async def reset(self, request: web.Request) -> web.Response:
        await self.collection.reset()
        return web.Response(status=204)

    async def populate(self, request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            proxies = await self.collection.populate(body)
        except ApiError as exc:
            return _json({**exc.to_json(), "proxies": []}, exc.status)
        return _json({"proxies": [p.to_json() for p in proxies]}, 201)

    async def proxy_index(self, request: web.Request) -> web.Response:
        return _json({name: p.to_json() for name, p in self.collection.proxies.items()})

    async def proxy_create(self, request: web.Request) -> web.Response:
        proxy = await self.collection.create(await _body(request))
        return _json(proxy.to_json(), 201)

    async def proxy_show(self, request: web.Request) -> web.Response:
        return _json(self.collection.get(request.match_info["proxy"]).to_json())

    async def proxy_update(self, request: web.Request) -> web.Response:
        name = request.match_info["proxy"]
        self.collection.get(name)  # 404 before reading the body
        proxy = await self.collection.update(name, await _body(request))
        return _json(proxy.to_json())

    async def proxy_delete(self, request: web.Request) -> web.Response:
        await self.collection.delete(request.match_info["proxy"])
        return web.Response(status=204)

    # -- toxics ------------------------------------------------------------------
    async def toxic_index(self, request: web.Request) -> web.Response:
        return _json(self.collection.get(request.match_info["proxy"]).to_json()["toxics"])

    async def toxic_create(self, request: web.Request) -> web.Response:
        proxy = self.collection.get(request.match_info["proxy"])
        toxic = proxy.create_toxic(await _body(request))
        return _json(toxic.spec.to_json())

    async def toxic_show(self, request: web.Request) -> web.Response:
        proxy = self.collection.get(request.match_info["proxy"])
        return _json(proxy.get_toxic(request.match_info["toxic"]).spec.to_json())

    async def toxic_update(self, request: web.Request) -> web.Response:
        proxy = self.collection.get(request.match_info["proxy"])
        name = request.match_info["toxic"]
        proxy.get_toxic(name)
        toxic = proxy.update_toxic(name, await _body(request))
        return _json(toxic.spec.to_json())

    async def toxic_delete(self, request: web.Request) -> web.Response:
        proxy = self.collection.get(request.match_info["proxy"])
        proxy.remove_toxic(request.match_info["toxic"])
        return web.Response(status=204)
