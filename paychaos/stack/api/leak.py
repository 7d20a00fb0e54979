"""An admin hook that makes the payment API retain memory: the ``app-leak`` fault.

``POST /admin/leak {"size_mb": 128, "ttl_s": 60}`` allocates and touches
``size_mb`` (so it is resident) and keeps it until the TTL, when the API
releases it by itself; ``DELETE /admin/leak/{id}`` releases it earlier.
Guarded like the gateway's admin API: a bearer token from the environment
variable ``PAYCHAOS_API_ADMIN_TOKEN`` (the API is started with the stack's
admin token), loopback clients only; without the variable the routes answer 403.
"""

from __future__ import annotations

import asyncio
import hmac
import mmap
import os
import secrets
from collections.abc import Mapping

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from paychaos.stack.service import is_loopback

TOKEN_ENV = "PAYCHAOS_API_ADMIN_TOKEN"
MAX_SIZE_MB = 8192
MAX_TTL_S = 3600.0


def admin_denied(request: Request, token: str | None) -> JSONResponse | None:
    if not token:
        return JSONResponse({"error": f"admin hook disabled: set {TOKEN_ENV}"}, status_code=403)
    if request.client is None or not is_loopback(request.client.host):
        return JSONResponse({"error": "loopback clients only"}, status_code=403)
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.encode(), token.encode()):
        return JSONResponse({"error": "Authorization: Bearer <token> required"}, status_code=401)
    return None


def install_leak_routes(app: FastAPI, environ: Mapping[str, str] = os.environ) -> None:
    """Add ``/admin/leak`` to ``app``; held memory is released at each leak's TTL."""
    token = environ.get(TOKEN_ENV)
    held: dict[str, bytearray] = {}
    timers: dict[str, asyncio.TimerHandle] = {}

    def release(leak_id: str) -> bool:
        timer = timers.pop(leak_id, None)
        if timer is not None:
            timer.cancel()
        return held.pop(leak_id, None) is not None

    @app.post("/admin/leak", include_in_schema=False)
    async def add_leak(request: Request) -> JSONResponse:
        if (denied := admin_denied(request, token)) is not None:
            return denied
        try:
            body = await request.json()
            size_mb, ttl_s = int(body["size_mb"]), float(body["ttl_s"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "body: size_mb and ttl_s required"}, status_code=400)
        if not (1 <= size_mb <= MAX_SIZE_MB and 0 < ttl_s <= MAX_TTL_S):
            return JSONResponse(
                {"error": f"size_mb 1..{MAX_SIZE_MB}, ttl_s 0..{MAX_TTL_S:.0f}"}, status_code=400
            )
        buf = bytearray(size_mb << 20)
        buf[:: mmap.PAGESIZE] = b"\x01" * len(range(0, len(buf), mmap.PAGESIZE))
        leak_id = "lk_" + secrets.token_hex(6)
        held[leak_id] = buf
        timers[leak_id] = asyncio.get_running_loop().call_later(ttl_s, release, leak_id)
        return JSONResponse({"id": leak_id, "size_mb": size_mb, "ttl_s": ttl_s}, status_code=201)

    @app.delete("/admin/leak/{leak_id}", include_in_schema=False)
    async def delete_leak(request: Request, leak_id: str) -> JSONResponse:
        if (denied := admin_denied(request, token)) is not None:
            return denied
        if not release(leak_id):
            return JSONResponse({"error": f"no leak {leak_id}"}, status_code=404)
        return JSONResponse({"id": leak_id, "released": True})
