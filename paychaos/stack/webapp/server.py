"""The checkout page's server: ``dist/`` as static files, ``config.js`` written at serve time.

``GET /`` is the page, ``GET /config.js`` sets ``window.PAYCHAOS_CONFIG`` (the API's
base URL and checkout path, the collector's URL, the app's name) before the bundle
runs, ``GET /healthz`` answers 200 once it serves, ``GET /metrics`` counts requests
by path kind. Nothing but ``dist/`` is served (Starlette's ``StaticFiles`` refuses
paths outside it).

Example::

    app = create_app(PageSettings(dist=DIST_DIR, api_url="http://127.0.0.1:8000",
                                  collector_url="http://127.0.0.1:4318"))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from paychaos.contracts.errors import InvalidInput


@dataclass(frozen=True)
class PageSettings:
    """Where the page finds the API and the collector, checked at start."""

    dist: Path
    api_url: str
    collector_url: str
    checkout_path: str = "/api/checkout"
    app_name: str = "shop-frontend"
    app_version: str = "0.1.0"
    environment: str = "paychaos"

    def __post_init__(self) -> None:
        for flag, url in (("--api-url", self.api_url), ("--collector-url", self.collector_url)):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise InvalidInput(f"{flag}: {url!r} is not an http(s) URL")
        if not self.checkout_path.startswith("/"):
            raise InvalidInput(f"--checkout-path: {self.checkout_path!r} must start with /")

    def config(self) -> dict[str, object]:
        return {
            "apiUrl": self.api_url.rstrip("/"),
            "checkoutPath": self.checkout_path,
            "collectorUrl": self.collector_url.rstrip("/"),
            "app": {
                "name": self.app_name,
                "version": self.app_version,
                "environment": self.environment,
            },
        }


def config_js(settings: PageSettings) -> str:
    """The script that sets ``window.PAYCHAOS_CONFIG`` (JSON, so no value can break out)."""
    text = json.dumps(settings.config(), sort_keys=True).replace("</", "<\\/")
    return f"window.PAYCHAOS_CONFIG = {text};\n"


def create_app(settings: PageSettings) -> Starlette:
    registry = CollectorRegistry()
    served = Counter(
        "webapp_requests",
        "Requests the checkout page's server answered",
        ["kind"],
        registry=registry,
    )
    script = config_js(settings).encode()

    async def config(_: Request) -> Response:
        served.labels(kind="config").inc()
        return Response(
            script,
            media_type="text/javascript",
            headers={"Cache-Control": "no-store"},
        )

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    static = StaticFiles(directory=settings.dist, html=True)

    async def files(scope: Scope, receive: Receive, send: Send) -> None:
        served.labels(kind="static").inc()
        await static(scope, receive, send)

    return Starlette(
        routes=[
            Route("/config.js", config),
            Route("/healthz", healthz),
            Route("/metrics", metrics),
            Mount("/", app=files),
        ]
    )
