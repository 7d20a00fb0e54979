"""The HTTP face of the gateway simulator (Starlette, orjson).

Routes::

    POST   /v1/charges                  create a charge (Idempotency-Key required)
    GET    /v1/charges                  query the ledger (filters, cursor pagination)
    GET    /v1/charges/{id}             one charge
    GET    /v1/ledger/summary           counts and sums per method/status, duplicates
    POST   /admin/behaviours            inject a fault (bearer token, loopback only)
    GET    /admin/behaviours            active faults with remaining seconds
    DELETE /admin/behaviours[/{id}]     revert one or all
    GET    /healthz, GET /metrics

Example::

    app = create_app(GatewayConfig(latency_scale=0, admin_token="s3cret"))
    serve_asgi(app, "127.0.0.1", 8101)
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from paychaos.contracts.messages import json_error
from paychaos.stack.service import is_loopback
from paychaos.stack.telemetry import redact_pan

from .behaviours import MAX_HANG_S, BehaviourStore, InvalidBehaviour, parse_behaviour
from .charges import InvalidRequest, parse_charge, validate_idempotency_key
from .ledger import STATUSES, Ledger
from .metrics import GatewayMetrics
from .processor import ChargeProcessor, error_body
from .profiles import DEFAULT_PROFILES, METHODS, MethodProfile, Sampler

log = logging.getLogger("paychaos.stack.gateway")

SERVICE_NAME = "payment-gateway"
ADMIN_TOKEN_ENV = "PAYCHAOS_GATEWAY_ADMIN_TOKEN"
JSON = "application/json"
MAX_PAGE = 1000

_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass(frozen=True)
class GatewayConfig:
    """Everything that shapes one gateway instance."""

    profiles: Mapping[str, MethodProfile] = field(default_factory=lambda: dict(DEFAULT_PROFILES))
    seed: int | None = None
    latency_scale: float = 1.0
    admin_token: str | None = None
    ledger_path: str | None = None
    sweep_interval_s: float = 0.5
    max_hang_s: float = MAX_HANG_S
    max_body_bytes: int = 64 * 1024


def _json(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def _invalid(param: str | None, message: str, status: int = 400) -> Response:
    return _json(status, error_body("invalid_request_error", message, param))


class Gateway:
    """State of one gateway: ledger, behaviours, sampler, metrics, tracer."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        registry: CollectorRegistry | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.config = config
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = GatewayMetrics(self.registry)
        self.tracer = tracer if tracer is not None else trace.get_tracer(SERVICE_NAME)
        self.ledger = Ledger(config.ledger_path)
        self.behaviours = BehaviourStore(set_gauge=self._set_fault_gauge)
        self.sampler = Sampler(
            config.profiles, seed=config.seed, latency_scale=config.latency_scale
        )
        self.processor = ChargeProcessor(
            self.ledger, self.behaviours, self.sampler, max_hang_s=config.max_hang_s
        )

    def _set_fault_gauge(self, fault: str, target: str, value: float) -> None:
        self.metrics.set_fault(fault, target, value)
        self.metrics.behaviours_active.set(len(self.behaviours))

    # -- charges -----------------------------------------------------------------

    async def create_charge(self, request: Request) -> Response:
        headers = request.headers
        traceparent = headers.get("traceparent")
        parent = (
            _PROPAGATOR.extract(
                {"traceparent": traceparent, "tracestate": headers.get("tracestate", "")}
            )
            if traceparent
            else None
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        with self.tracer.start_as_current_span(
            "POST /v1/charges", context=parent, kind=SpanKind.SERVER
        ) as span:
            try:
                key = validate_idempotency_key(headers.get("idempotency-key"))
                # masked like the logs: a client's key can be a card number
                span.set_attribute("payment.idempotency_key", redact_pan(key))
                charge_request = parse_charge(await request.body())
            except InvalidRequest as exc:
                span.set_attribute("http.response.status_code", exc.status)
                span.set_attribute("gateway.outcome", "invalid")
                return _invalid(exc.param, exc.message, exc.status)
            method = charge_request.method
            span.set_attribute("payment.method", method)
            result = await self.processor.charge(key, charge_request)
            duration_s = loop.time() - started
            outcome = result.outcome
            span.set_attribute("gateway.outcome", outcome)
            span.set_attribute("http.response.status_code", result.status_code)
            if result.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR, f"gateway {outcome}"))
            self.metrics.charge(method, outcome, duration_s)
            if outcome != "succeeded":
                self._log_outcome(
                    outcome,
                    result.status_code,
                    key,
                    charge_request.last4,
                    method,
                    result.decline_code,
                )
            elif log.isEnabledFor(logging.DEBUG):
                self._log_outcome(
                    outcome, result.status_code, key, charge_request.last4, method, None
                )
        response_headers = {"Idempotent-Replayed": "true"} if outcome == "replayed" else None
        return _json(result.status_code, result.body, response_headers)

    @staticmethod
    def _log_outcome(
        outcome: str,
        status: int,
        key: str,
        last4: str | None,
        method: str,
        decline_code: str | None,
    ) -> None:
        level = logging.WARNING if status >= 500 else logging.INFO
        if status >= 500 and status != 504:
            message = f"{method} payment gateway error: injected {status}"
        elif status == 504:
            message = f"{method} payment gateway connection error: Timeout"
        else:
            message = f"{method} charge {outcome}"
        extra: dict[str, Any] = {
            "payment_method": method,
            "outcome": outcome,
            "status_code": status,
            "idempotency_key": key,
        }
        if last4 is not None:
            extra["card_last4"] = last4
        if decline_code is not None:
            extra["decline_code"] = decline_code
        log.log(level, message, extra=extra)

    async def list_charges(self, request: Request) -> Response:
        params = request.query_params
        unknown = set(params) - {
            "method",
            "status",
            "payment_id",
            "idempotency_key",
            "limit",
            "after",
        }
        if unknown:
            name = sorted(unknown)[0]
            return _invalid(name, f"unknown query parameter {name!r}")
        method = params.get("method") or None
        if method is not None and method not in METHODS:
            return _invalid("method", f"method must be one of {', '.join(METHODS)}")
        status = params.get("status") or None
        if status is not None and status not in STATUSES:
            return _invalid("status", f"status must be one of {', '.join(STATUSES)}")
        raw_limit = params.get("limit", "100")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
            return _invalid("limit", f"limit must be an integer 1-{MAX_PAGE}")
        after = params.get("after") or None
        if after is not None and self.ledger.get(after) is None:
            return _invalid("after", f"after must be the id of an existing charge, not {after!r}")
        page, has_more = self.ledger.query(
            method=method,
            status=status,
            payment_id=params.get("payment_id") or None,
            idempotency_key=params.get("idempotency_key") or None,
            after=after,
            limit=int(raw_limit),
        )
        body = {
            "data": [self.ledger.view(charge) for charge in page],
            "has_more": has_more,
            "next_after": page[-1].id if has_more and page else None,
        }
        return _json(200, orjson.dumps(body))

    async def get_charge(self, request: Request) -> Response:
        charge_id = request.path_params["charge_id"]
        charge = self.ledger.get(charge_id)
        if charge is None:
            return _invalid("id", f"no such charge: {charge_id!r}", 404)
        return _json(200, orjson.dumps(self.ledger.view(charge)))

    async def ledger_summary(self, request: Request) -> Response:
        return _json(200, orjson.dumps(self.ledger.summary()))

    # -- admin -------------------------------------------------------------------

    def _admin_denied(self, request: Request) -> Response | None:
        token = self.config.admin_token
        if not token:
            return _json(
                403,
                error_body(
                    "permission_error",
                    "the admin API is disabled: start the gateway with --admin-token "
                    "or PAYCHAOS_GATEWAY_ADMIN_TOKEN",
                ),
            )
        client = request.client
        if client is None or not is_loopback(client.host):
            return _json(
                403, error_body("permission_error", "the admin API answers loopback clients only")
            )
        supplied = request.headers.get("authorization", "")
        scheme, _, value = supplied.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), token.encode()
        ):
            return _json(
                401,
                error_body(
                    "authentication_error",
                    "a valid 'Authorization: Bearer <token>' is required",
                    "Authorization",
                ),
                {"WWW-Authenticate": "Bearer"},
            )
        return None

    async def add_behaviour(self, request: Request) -> Response:
        if (denied := self._admin_denied(request)) is not None:
            return denied
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return _invalid("body", f"the request body is not JSON: {json_error(exc)}")
        try:
            spec = parse_behaviour(payload)
        except InvalidBehaviour as exc:
            return _invalid(exc.param, exc.message)
        active = self.behaviours.add(spec)
        log.warning(
            "gateway behaviour injected",
            extra={
                "behaviour_id": active.id,
                "target": spec.target,
                "faults": ",".join(spec.faults()),
                "ttl_s": spec.ttl_s,
            },
        )
        return _json(201, orjson.dumps(active.to_dict(self.behaviours.now())))

    async def list_behaviours(self, request: Request) -> Response:
        if (denied := self._admin_denied(request)) is not None:
            return denied
        now = self.behaviours.now()
        data = [active.to_dict(now) for active in self.behaviours.active()]
        return _json(200, orjson.dumps({"data": data}))

    async def get_behaviour(self, request: Request) -> Response:
        if (denied := self._admin_denied(request)) is not None:
            return denied
        behaviour_id = request.path_params["behaviour_id"]
        active = self.behaviours.get(behaviour_id)
        if active is None:
            return _invalid("id", f"no active behaviour {behaviour_id!r}", 404)
        return _json(200, orjson.dumps(active.to_dict(self.behaviours.now())))

    async def delete_behaviour(self, request: Request) -> Response:
        if (denied := self._admin_denied(request)) is not None:
            return denied
        behaviour_id = request.path_params["behaviour_id"]
        if not self.behaviours.remove(behaviour_id):
            return _invalid("id", f"no active behaviour {behaviour_id!r}", 404)
        log.warning("gateway behaviour reverted", extra={"behaviour_id": behaviour_id})
        return _json(200, orjson.dumps({"id": behaviour_id, "deleted": True}))

    async def clear_behaviours(self, request: Request) -> Response:
        if (denied := self._admin_denied(request)) is not None:
            return denied
        removed = self.behaviours.clear()
        if removed:
            log.warning("gateway behaviours reverted", extra={"count": removed})
        return _json(200, orjson.dumps({"deleted": removed}))

    # -- service -----------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return _json(200, b'{"status":"ok"}')

    async def metrics_endpoint(self, request: Request) -> Response:
        self.behaviours.sweep()
        self.metrics.ledger_charges.set(len(self.ledger))
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    async def sweeper(self) -> None:
        """Expire behaviours on time even when no request comes in."""
        while True:
            await asyncio.sleep(self.config.sweep_interval_s)
            try:
                expired = self.behaviours.sweep()
            except Exception:  # the sweeper must outlive any bug in a gauge callback
                log.exception("behaviour sweep failed")
                continue
            if expired:
                log.warning("gateway behaviours expired", extra={"count": expired})

    def close(self) -> None:
        self.behaviours.clear()
        self.ledger.close()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error_type = "invalid_request_error" if exc.status_code < 500 else "api_error"
    headers = dict(exc.headers) if exc.headers else None
    return _json(exc.status_code, error_body(error_type, str(exc.detail)), headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return _json(500, error_body("api_error", "internal error in the gateway simulator"))


def create_app(
    config: GatewayConfig,
    *,
    registry: CollectorRegistry | None = None,
    tracer: Tracer | None = None,
) -> Starlette:
    """Build the ASGI app; ``app.state.gateway`` holds the :class:`Gateway`."""
    gateway = Gateway(config, registry=registry, tracer=tracer)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(gateway.sweeper(), name="gateway-behaviour-sweeper")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            gateway.close()

    routes = [
        Route("/healthz", gateway.healthz, methods=["GET"]),
        Route("/metrics", gateway.metrics_endpoint, methods=["GET"]),
        Route("/v1/charges", gateway.create_charge, methods=["POST"]),
        Route("/v1/charges", gateway.list_charges, methods=["GET"]),
        Route("/v1/charges/{charge_id}", gateway.get_charge, methods=["GET"]),
        Route("/v1/ledger/summary", gateway.ledger_summary, methods=["GET"]),
        Route("/admin/behaviours", gateway.add_behaviour, methods=["POST"]),
        Route("/admin/behaviours", gateway.list_behaviours, methods=["GET"]),
        Route("/admin/behaviours", gateway.clear_behaviours, methods=["DELETE"]),
        Route("/admin/behaviours/{behaviour_id}", gateway.get_behaviour, methods=["GET"]),
        Route("/admin/behaviours/{behaviour_id}", gateway.delete_behaviour, methods=["DELETE"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        max_body_size=config.max_body_bytes,
    )
    app.state.gateway = gateway
    return app
