"""The HTTP control API: Toxiproxy 2.x's routes, fields and status codes, plus a few extras.

Toxiproxy routes: ``GET /version``, ``GET|POST /proxies``, ``POST /populate``,
``POST /reset``, ``GET|POST|PATCH|DELETE /proxies/{proxy}``,
``GET|POST /proxies/{proxy}/toxics``,
``GET|POST|PATCH|DELETE /proxies/{proxy}/toxics/{toxic}``. Errors are
``{"error": "<message>", "status": <code>}`` (Toxiproxy's messages, word for
word; this proxy may add a ``"detail"`` field explaining more).

Like Toxiproxy, it refuses browsers: a request whose ``User-Agent`` starts
with ``Mozilla/`` gets 403 ``User agent not allowed`` (plain text).

Extras: ``GET /healthz`` (200 ``ok``), ``GET /metrics`` (Prometheus text),
``GET /events`` (the recent toxic events, newest last).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from paychaos.chaos.proxy.collection import ProxyCollection
from paychaos.chaos.proxy.httpd import HttpServer, Request, Response, Router
from paychaos.chaos.proxy.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from paychaos.chaos.proxy.metrics import render_metrics
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


def _json(data: Any, status: int = 200) -> Response:
    return Response.json(data, status)


def _stop_browsers(request: Request) -> Response | None:
    """Refuse browsers, as Toxiproxy does, so a web page cannot drive the API (CSRF)."""
    if request.headers.get("user-agent", "").startswith(BROWSER_USER_AGENT_PREFIX):
        response = Response.text(BROWSER_REFUSED + "\n", 403)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
    return None


def _error(request: Request, exc: Exception) -> Response:
    """An exception from a handler: ApiError as its JSON, anything else a logged 500."""
    if isinstance(exc, ApiError):
        return _json(exc.to_json(), exc.status)
    log.error(
        "control API error on %s %s",
        request.method,
        request.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return _json({"error": f"internal error: {exc}", "status": 500}, 500)


def _body(request: Request) -> object:
    text = request.text()
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except ValueError as exc:
        raise bad_request(str(exc)) from exc


class ControlApi:
    """The routes, bound to one :class:`ProxyCollection`."""

    def __init__(self, collection: ProxyCollection) -> None:
        self.collection = collection

    def router(self) -> Router:
        r = Router()
        r.add("GET", "/version", self.version)
        r.add("GET", "/healthz", self.healthz)
        r.add("GET", "/metrics", self.metrics)
        r.add("GET", "/events", self.events)
        r.add("POST", "/reset", self.reset)
        r.add("POST", "/populate", self.populate)
        r.add("GET", "/proxies", self.proxy_index)
        r.add("POST", "/proxies", self.proxy_create)
        r.add("GET", "/proxies/{proxy}", self.proxy_show)
        r.add("POST", "/proxies/{proxy}", self.proxy_update)
        r.add("PATCH", "/proxies/{proxy}", self.proxy_update)
        r.add("DELETE", "/proxies/{proxy}", self.proxy_delete)
        r.add("GET", "/proxies/{proxy}/toxics", self.toxic_index)
        r.add("POST", "/proxies/{proxy}/toxics", self.toxic_create)
        r.add("GET", "/proxies/{proxy}/toxics/{toxic}", self.toxic_show)
        r.add("POST", "/proxies/{proxy}/toxics/{toxic}", self.toxic_update)
        r.add("PATCH", "/proxies/{proxy}/toxics/{toxic}", self.toxic_update)
        r.add("DELETE", "/proxies/{proxy}/toxics/{toxic}", self.toxic_delete)
        return r

    def server(self) -> HttpServer:
        return HttpServer(self.router(), before=_stop_browsers, on_error=_error)

    # -- service conventions ---------------------------------------------------
    async def version(self, request: Request) -> Response:
        return _json({"version": VERSION, "extensions": EXTENSIONS_DOC})

    async def healthz(self, request: Request) -> Response:
        return Response.text("ok")

    async def metrics(self, request: Request) -> Response:
        return Response(200, render_metrics(self.collection).encode(), METRICS_CONTENT_TYPE)

    async def events(self, request: Request) -> Response:
        return _json(list(self.collection.events.recent))

    # -- proxies -----------------------------------------------------------------
    async def reset(self, request: Request) -> Response:
        await self.collection.reset()
        return Response(204)

    async def populate(self, request: Request) -> Response:
        try:
            proxies = await self.collection.populate(_body(request))
        except ApiError as exc:
            return _json({**exc.to_json(), "proxies": []}, exc.status)
        return _json({"proxies": [p.to_json() for p in proxies]}, 201)

    async def proxy_index(self, request: Request) -> Response:
        return _json({name: p.to_json() for name, p in self.collection.proxies.items()})

    async def proxy_create(self, request: Request) -> Response:
        proxy = await self.collection.create(_body(request))
        return _json(proxy.to_json(), 201)

    async def proxy_show(self, request: Request) -> Response:
        return _json(self.collection.get(request.match["proxy"]).to_json())

    async def proxy_update(self, request: Request) -> Response:
        name = request.match["proxy"]
        self.collection.get(name)  # 404 before reading the body
        proxy = await self.collection.update(name, _body(request))
        return _json(proxy.to_json())

    async def proxy_delete(self, request: Request) -> Response:
        await self.collection.delete(request.match["proxy"])
        return Response(204)

    # -- toxics ------------------------------------------------------------------
    async def toxic_index(self, request: Request) -> Response:
        return _json(self.collection.get(request.match["proxy"]).to_json()["toxics"])

    async def toxic_create(self, request: Request) -> Response:
        proxy = self.collection.get(request.match["proxy"])
        toxic = proxy.create_toxic(_body(request))
        return _json(toxic.spec.to_json())

    async def toxic_show(self, request: Request) -> Response:
        proxy = self.collection.get(request.match["proxy"])
        return _json(proxy.get_toxic(request.match["toxic"]).spec.to_json())

    async def toxic_update(self, request: Request) -> Response:
        proxy = self.collection.get(request.match["proxy"])
        name = request.match["toxic"]
        proxy.get_toxic(name)
        toxic = proxy.update_toxic(name, _body(request))
        return _json(toxic.spec.to_json())

    async def toxic_delete(self, request: Request) -> Response:
        proxy = self.collection.get(request.match["proxy"])
        proxy.remove_toxic(request.match["toxic"])
        return Response(204)
