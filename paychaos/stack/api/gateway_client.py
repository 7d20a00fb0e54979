"""The payment API's client for the payment gateway: bounded, traced, idempotent.

Every call carries the payment's ``Idempotency-Key`` (so a retry can never
charge twice) and the W3C ``traceparent`` of the current span (so the
gateway's spans join the checkout's trace).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import orjson
from opentelemetry.propagate import inject
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from paychaos.stack.api.metrics import ApiMetrics

Outcome = Literal["success", "declined", "timeout", "error"]


@dataclass(frozen=True)
class ChargeResult:
    """What the gateway said; ``outcome`` is the label used in metrics."""

    outcome: Outcome
    charge_id: str | None = None
    decline_code: str | None = None
    http_status: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class GatewaySettings:
    url: str
    timeout_s: float = 2.0
    max_connections: int = 256


class GatewayClient:
    """``POST /v1/charges`` on the gateway, with a hard timeout."""

    def __init__(self, settings: GatewaySettings, tracer: Tracer, metrics: ApiMetrics) -> None:
        self.settings = settings
        self._tracer = tracer
        self._metrics = metrics
        self._session: aiohttp.ClientSession | None = None
        self._charges_url = settings.url.rstrip("/") + "/v1/charges"
        self._host = aiohttp.client.URL(settings.url)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.settings.max_connections, keepalive_timeout=30
                ),
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def charge(self, method: str, idempotency_key: str, body: dict[str, Any]) -> ChargeResult:
        start = time.perf_counter()
        with self._tracer.start_as_current_span(
            "POST /v1/charges",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "POST",
                "url.full": self._charges_url,
                "server.address": self._host.host or "",
                "server.port": self._host.port or 80,
                "payment.method": method,
                "peer.service": "payment-gateway",
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            headers = {"Idempotency-Key": idempotency_key, "Content-Type": "application/json"}
            inject(headers)
            result = await self._post(headers, body)
            span.set_attribute("gateway.outcome", result.outcome)
            if result.http_status is not None:
                span.set_attribute("http.response.status_code", result.http_status)
            if result.outcome in ("timeout", "error"):
                span.set_status(Status(StatusCode.ERROR, result.detail[:200]))
                span.set_attribute("error.type", result.outcome)
        self._metrics.gateway_duration.labels(method, result.outcome).observe(
            time.perf_counter() - start
        )
        if result.outcome == "timeout":
            self._metrics.gateway_timeouts.labels(method).inc()
        return result

    async def _post(self, headers: dict[str, str], body: dict[str, Any]) -> ChargeResult:
        try:
            async with self._client().post(
                self._charges_url, data=orjson.dumps(body), headers=headers
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except TimeoutError:
            return ChargeResult("timeout", detail=f"no answer within {self.settings.timeout_s}s")
        except aiohttp.ClientError as exc:
            return ChargeResult("error", detail=f"{type(exc).__name__}: {exc}")
        try:
            payload = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        if status == 201 or (200 <= status < 300 and payload.get("status") == "succeeded"):
            return ChargeResult("success", charge_id=payload.get("id"), http_status=status)
        if status == 402:
            return ChargeResult(
                "declined",
                charge_id=payload.get("id"),
                decline_code=payload.get("decline_code") or "declined",
                http_status=status,
            )
        if status == 504:
            return ChargeResult("timeout", http_status=status, detail="gateway answered 504")
        error = payload.get("error")
        message = (
            error.get("message", "")
            if isinstance(error, dict)
            else raw[:200].decode(errors="replace")
        )
        return ChargeResult("error", http_status=status, detail=f"gateway {status}: {message}")
