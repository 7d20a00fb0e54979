"""The HTTP plumbing the Tempo and Loki sources share: an injectable transport.

The transport is :class:`paychaos.stack.monitoring.promapi.Transport` (``method, url,
timeout_s -> HttpResponse``), so tests hand in recorded responses and no
socket is opened.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import orjson

from paychaos.contracts.errors import InvalidInput, StackError
from paychaos.stack.monitoring.promapi import Transport, urllib_transport


class JsonApi:
    """GET JSON documents from one base URL; errors become :class:`StackError`."""

    def __init__(self, base_url: str, *, timeout_s: float, transport: Transport | None) -> None:
        if not re.match(r"^https?://", base_url):
            raise InvalidInput(f"base URL must start with http(s)://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._transport: Transport = transport or urllib_transport

    def url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.base_url}{path}{query}"

    def get(
        self, path: str, params: Mapping[str, str] | None = None, *, missing_ok: bool = False
    ) -> Any:
        """The decoded JSON body; ``None`` on 404 when ``missing_ok``."""
        url = self.url(path, params)
        response = self._transport("GET", url, self.timeout_s)
        if response.status == 404 and missing_ok:
            return None
        if response.status >= 400:
            text = response.body[:300].decode("utf-8", "replace").strip()
            raise StackError(f"GET {url}: HTTP {response.status}: {text}")
        try:
            return orjson.loads(response.body) if response.body.strip() else None
        except orjson.JSONDecodeError as exc:
            raise StackError(f"GET {url}: response is not JSON") from exc
