"""The reference payment API (stands for the seed's NestJS backend).

``POST /api/checkout`` records the payment in PostgreSQL, charges it through
the gateway with the same ``Idempotency-Key``, records the outcome and answers:

====  =====================================================================
201   charged (``status: succeeded``)
402   declined by the processor
400   ``Idempotency-Key`` header missing or malformed
409   a request with this key is still being processed
413   body too large
422   invalid body (RFC 9457 problem naming the field), or key reused
      with a different body
502   the gateway failed; payment left ``unknown``, safe to retry
503   the database is unavailable; nothing was charged by this attempt
504   the gateway timed out; payment left ``unknown``, safe to retry
====  =====================================================================

A retry with the same key returns the first final outcome and never charges
again; a retry of an ``unknown`` payment asks the gateway again with the same
key (the gateway deduplicates). A background reconciler settles ``unknown``
payments from the gateway's ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Annotated, Any

import aiohttp
import orjson
from fastapi import FastAPI, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from opentelemetry import trace
from opentelemetry.trace import Tracer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from paychaos.contracts.domain import CUSTOMER_LOG_ATTRIBUTE, CUSTOMER_SPAN_ATTRIBUTE
from paychaos.contracts.release import DEFAULT_VERSION, Release
from paychaos.stack.api.db import DatabaseUnavailable, DbSettings, PaymentStore
from paychaos.stack.api.gateway_client import GatewayClient, GatewaySettings
from paychaos.stack.api.metrics import ApiMetrics, create_metrics
from paychaos.stack.api.middleware import TelemetryMiddleware
from paychaos.stack.api.models import IDEMPOTENCY_KEY, MAX_BODY_BYTES, CheckoutRequest, Payment
from paychaos.stack.api.order_label import OrderLabel, install_order_label_routes
from paychaos.stack.api.problems import problem, problem_response, validation_problem
from paychaos.stack.telemetry import redact_pan

log = logging.getLogger("payment-api")

_OUTCOME_TO_STATUS = {"success": "succeeded", "declined": "declined"}
_STATUSES = {s.value for s in HTTPStatus}

#: What a browser may send cross-origin: the body's type, the idempotency key and the
#: W3C trace context (the Faro web SDK's fetch instrumentation adds it).
CORS_HEADERS = ("Content-Type", "Idempotency-Key", "traceparent", "tracestate", "baggage")


@dataclass(frozen=True)
class ApiSettings:
    """Everything the API needs; every bound has a unit in its name."""

    database: DbSettings
    gateway: GatewaySettings
    reconcile_interval_s: float = 5.0
    reconcile_after_s: float = 10.0
    give_up_after_s: float = 120.0
    max_body_bytes: int = MAX_BODY_BYTES
    release: Release | None = None
    """The release record read at start (a deployment, or its rollback); None: the default."""
    cors_origins: tuple[str, ...] = ()
    """Browser origins allowed to call the API (the checkout page's); none: no CORS."""

    @property
    def version(self) -> str:
        return self.release.effective(time.time()) if self.release else DEFAULT_VERSION


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def payment_json(row: dict[str, Any]) -> dict[str, Any]:
    cents = int(row["amount_cents"])
    return Payment(
        id=row["id"],
        status=row["status"],
        method=row["method"],
        amount=f"{cents // 100}.{cents % 100:02d}",
        currency=row["currency"],
        idempotency_key=row["idempotency_key"],
        order_id=row["order_id"],
        gateway_charge_id=row["gateway_charge_id"],
        decline_code=row["decline_code"],
        card_last4=row["card_last4"],
        created_at=_iso(row["created_at"]),
        updated_at=_iso(row["updated_at"]),
    ).model_dump()


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


class CheckoutService:
    """The checkout state machine: pending → succeeded | declined | unknown → (retry)."""

    def __init__(
        self,
        settings: ApiSettings,
        store: PaymentStore,
        gateway: GatewayClient,
        metrics: ApiMetrics,
        order_label: OrderLabel | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.gateway = gateway
        self.metrics = metrics
        self.order_label = order_label  # the bad deploy's per-order metric (off unless deployed)

    async def checkout(self, req: CheckoutRequest, key: str) -> Response:
        start = time.perf_counter()
        span = trace.get_current_span()
        span.set_attribute("payment.method", req.method)
        # Client-chosen strings are masked like the logs are: a key or a customer id
        # can be a card number (a 16-digit key matches the key's pattern).
        span.set_attribute("payment.idempotency_key", redact_pan(key))
        # who pays: an attribute of the span and the logs, never a metric label (cardinality)
        span.set_attribute(CUSTOMER_SPAN_ATTRIBUTE, redact_pan(req.customer.id))
        self.metrics.in_flight.inc()
        status = "error"
        try:
            response, status = await self._checkout(req, key)
            return response
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - start
            self.metrics.checkout_duration.labels(req.method, status).observe(elapsed)
            if self.order_label is not None:
                self.order_label.observe(req.method, status, req.order_id or key, elapsed)

    async def _checkout(self, req: CheckoutRequest, key: str) -> tuple[Response, str]:
        request_hash = hashlib.sha256(req.model_dump_json().encode()).hexdigest()
        method = req.method
        try:
            row = await self.store.insert_pending(
                {
                    "id": uuid.uuid4(),
                    "idempotency_key": key,
                    "request_hash": request_hash,
                    "order_id": req.order_id,
                    "customer_id": req.customer.id,
                    "method": method,
                    "amount_cents": req.amount_cents,
                    "currency": req.currency,
                    "card_last4": req.payment.last4,
                }
            )
            if row is None:
                existing = await self.store.get_by_key(key)
                if existing is None:  # deleted between the two statements: treat as a race
                    return self._in_progress(key), "replay"
                if existing["request_hash"] != request_hash:
                    return problem(
                        422,
                        "idempotency-key-reused",
                        "Idempotency-Key reused with a different body",
                        f"key {key} was first used for another request",
                        payment_id=existing["id"],
                    ), "replay"
                if existing["status"] in ("succeeded", "declined"):
                    return self._final(existing, replayed=True), "replay"
                row = await self.store.mark_retry(
                    existing["id"], stale_after_s=self.settings.gateway.timeout_s * 2 + 1
                )
                if row is None:
                    return self._in_progress(key), "replay"
                log.info("retrying payment", extra={"payment_id": row["id"], "method": method})
        except DatabaseUnavailable as exc:
            return self._db_down(method, exc), "error"

        trace.get_current_span().set_attribute("payment.id", row["id"])
        result = await self.gateway.charge(
            method,
            key,
            {
                "amount_cents": req.amount_cents,
                "currency": req.currency,
                "method": method,
                "source": req.gateway_source(),
                "payment_id": row["id"],
                "description": f"order {req.order_id or row['id']}",
                "customer": req.customer.id,
            },
        )
        new_status = _OUTCOME_TO_STATUS.get(result.outcome, "unknown")
        trace.get_current_span().set_attribute("payment.status", new_status)
        try:
            row = await self.store.settle(
                row["id"], new_status, result.charge_id, result.decline_code
            )
        except DatabaseUnavailable as exc:
            # The charge may have happened: the row stays pending and a retry with the
            # same key (or the reconciler) settles it from the gateway, never charging twice.
            return self._db_down(method, exc, payment_id=row["id"]), "error"

        extra = {
            "payment_id": row["id"],
            "method": method,
            "amount_cents": req.amount_cents,
            "currency": req.currency,
            "card_last4": req.payment.last4,
            "outcome": result.outcome,
            CUSTOMER_LOG_ATTRIBUTE: req.customer.id,
        }
        if result.outcome == "success":
            self.metrics.payments.labels(method, "success").inc()
            log.info("payment succeeded", extra=extra)
            return self._final(row), "success"
        if result.outcome == "declined":
            self.metrics.payments.labels(method, "declined").inc()
            log.info("payment declined", extra={**extra, "decline_code": result.decline_code})
            return self._final(row), "declined"
        self.metrics.payments.labels(method, "error").inc()
        if result.outcome == "timeout":
            log.error(
                "gateway timeout, payment left unknown", extra={**extra, "detail": result.detail}
            )
            return problem(
                504,
                "gateway-timeout",
                "Payment gateway timeout",
                f"the {method} processor did not answer in {self.settings.gateway.timeout_s}s; "
                "the payment is unknown and safe to retry with the same Idempotency-Key",
                payment_id=row["id"],
                payment_status="unknown",
            ), "error"
        log.error("gateway error, payment left unknown", extra={**extra, "detail": result.detail})
        return problem(
            502,
            "gateway-error",
            "Payment gateway error",
            f"the {method} processor failed ({result.detail}); the payment is unknown and "
            "safe to retry with the same Idempotency-Key",
            payment_id=row["id"],
            payment_status="unknown",
        ), "error"

    def _final(self, row: dict[str, Any], replayed: bool = False) -> Response:
        code = 201 if row["status"] == "succeeded" else 402
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        return _json(code, payment_json(row), headers)

    def _in_progress(self, key: str) -> Response:
        return problem(
            409,
            "request-in-progress",
            "A request with this Idempotency-Key is in progress",
            f"key {key} is being processed; retry later",
            headers={"Retry-After": "1"},
        )

    def _db_down(self, method: str, exc: Exception, payment_id: str | None = None) -> Response:
        self.metrics.payments.labels(method, "error").inc()
        log.error("database unavailable", extra={"method": method, "detail": str(exc)})
        return problem(
            503,
            "database-unavailable",
            "Database unavailable",
            "the payment database did not answer; retry with the same Idempotency-Key",
            headers={"Retry-After": "1"},
            payment_id=payment_id,
        )

    async def reconcile_once(self, session: aiohttp.ClientSession) -> int:
        """Settle unknown/stale payments from the gateway ledger; returns how many settled."""
        rows = await self.store.list_unsettled(self.settings.reconcile_after_s)
        settled = 0
        base = self.settings.gateway.url.rstrip("/") + "/v1/charges"
        for row in rows:
            params = {"idempotency_key": row["idempotency_key"]}
            async with session.get(base, params=params) as resp:
                if resp.status != 200:
                    continue
                payload = orjson.loads(await resp.read())
            charges: list[dict[str, Any]] = []
            if isinstance(payload, dict):
                charges = payload.get("data") or payload.get("charges") or []
            final = [c for c in charges if c.get("status") in ("succeeded", "declined")]
            if final:
                charge = final[0]
                await self.store.settle(
                    row["id"], charge["status"], charge.get("id"), charge.get("decline_code")
                )
                self.metrics.reconciled.labels(row["method"], charge["status"]).inc()
                settled += 1
            elif _age_s(row["updated_at"]) > self.settings.give_up_after_s:
                await self.store.settle(row["id"], "failed", None, None)
                self.metrics.reconciled.labels(row["method"], "failed").inc()
                settled += 1
        return settled


def _age_s(value: Any) -> float:
    return time.time() - value.timestamp() if hasattr(value, "timestamp") else 0.0


async def _reconcile_forever(service: CheckoutService) -> None:
    timeout = aiohttp.ClientTimeout(total=service.settings.gateway.timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            await asyncio.sleep(service.settings.reconcile_interval_s)
            try:
                count = await service.reconcile_once(session)
                if count:
                    log.info("reconciled payments", extra={"count": count})
            except (DatabaseUnavailable, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("reconciler pass failed", extra={"detail": str(exc)})


def announce_release(settings: ApiSettings, metrics: ApiMetrics) -> asyncio.Task[None] | None:
    """Report the running version (``shop_build_info``), log a deployment or its rollback
    (the MELT event, JSON with the version), and schedule the rollback at the release's TTL."""
    version, release = settings.version, settings.release
    metrics.build_info.labels(version).set(1)
    if release is None:
        log.info("payment-api %s started", version, extra={"version": version})
        return None
    if version == release.version:
        log.info(
            "deployed %s",
            version,
            extra={"event": "deployment", "version": version, "previous_version": release.previous},
        )
    else:
        log.info(
            "rolled back to %s",
            version,
            extra={"event": "rollback", "version": version, "from_version": release.version},
        )
        return None
    if release.until_unix_s is None:
        return None
    until = release.until_unix_s

    async def roll_back_at_ttl() -> None:
        await asyncio.sleep(max(0.0, until - time.time()))
        log.info(
            "deployment of %s expired: restarting onto %s",
            version,
            release.previous,
            extra={"event": "rollback", "version": release.previous, "from_version": version},
        )
        os.kill(os.getpid(), signal.SIGTERM)  # graceful; the supervisor starts the previous

    return asyncio.create_task(roll_back_at_ttl())


def create_app(
    settings: ApiSettings, *, tracer: Tracer | None = None, metrics: ApiMetrics | None = None
) -> Any:
    """Build the ASGI app (FastAPI inside the telemetry middleware)."""
    metrics = metrics or create_metrics()
    tracer = tracer or trace.get_tracer("payment-api")
    store = PaymentStore(settings.database, tracer, metrics)
    gateway = GatewayClient(settings.gateway, tracer, metrics)
    order_label = OrderLabel(metrics.registry)
    service = CheckoutService(settings, store, gateway, metrics, order_label)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await store.ensure_schema()
        except DatabaseUnavailable as exc:
            log.warning(
                "database not ready at start; will retry on first use", extra={"detail": str(exc)}
            )
        except Exception as exc:  # asyncpg raises its own errors before the pool exists
            log.warning(
                "database not ready at start; will retry on first use",
                extra={"detail": f"{type(exc).__name__}: {exc}"},
            )
        reconciler = asyncio.create_task(_reconcile_forever(service))
        rollback = announce_release(settings, metrics)
        yield
        for task in (reconciler, rollback):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await gateway.close()
        await store.close()

    app = FastAPI(
        # FastAPI's native OpenTelemetry would add its own operation spans and
        # instruments on top of ours (TelemetryMiddleware owns the server span and
        # the RED metrics): one instrumentation, not two.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title="paychaos payment API",
        version="0.1.0",
        description=__doc__,
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        return validation_problem(exc.errors(), exc.body)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI's own refusals (an unreadable body, an unknown path or method) as
        # problems too, in plain words rather than the framework's.
        if exc.status_code == 400:
            return problem(
                400,
                "unreadable-body",
                "Request body could not be read",
                "the body is not JSON text (UTF-8); send the checkout as a JSON object",
            )
        phrase = HTTPStatus(exc.status_code).phrase if exc.status_code in _STATUSES else "Error"
        return problem(
            exc.status_code,
            phrase.lower().replace(" ", "-"),
            phrase,
            f"{phrase.lower()}; see /docs for the API's operations",
            headers=dict(exc.headers or {}),
        )

    @app.post(
        "/api/checkout",
        status_code=201,
        response_model=Payment,
        responses={
            400: problem_response("Idempotency-Key missing or malformed"),
            402: {"description": "Declined", "model": Payment},
            409: problem_response("Same key in progress"),
            413: problem_response("Body larger than 64 KiB"),
            422: problem_response(
                "Invalid body: a field breaks its schema (the problem's errors name it), "
                "or a rule across fields (pointer `#`): `amount` must equal the sum of "
                "`unit_price` times `quantity`; visa and amex need `payment.card_token` and "
                "`payment.last4`, paypal `payment.payer_email`, crypto `payment.wallet`; "
                "or the key was used with another body"
            ),
            502: problem_response("Gateway error; payment unknown, retry with same key"),
            503: problem_response("Database unavailable"),
            504: problem_response("Gateway timeout; payment unknown, retry with same key"),
        },
        openapi_extra={
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": True,
                    "description": "a unique key per checkout; a retry sends the same key",
                    "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY.pattern},
                }
            ]
        },
    )
    async def checkout(
        body: CheckoutRequest,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> Response:
        """Charge a cart with one payment method."""
        if idempotency_key is None:
            return problem(
                400,
                "idempotency-key-missing",
                "Idempotency-Key header required",
                "send a unique Idempotency-Key header with every checkout",
            )
        if not IDEMPOTENCY_KEY.match(idempotency_key):
            return problem(
                400,
                "idempotency-key-invalid",
                "Malformed Idempotency-Key",
                "8-255 characters of A-Z a-z 0-9 _ - : .",
            )
        return await service.checkout(body, idempotency_key)

    @app.get(
        "/api/payments/{payment_id}",
        response_model=Payment,
        responses={
            404: problem_response("No payment with that id"),
            503: problem_response("Database unavailable"),
        },
    )
    async def get_payment(
        payment_id: Annotated[str, Path(json_schema_extra={"format": "uuid"})],
    ) -> Response:
        """One payment by id."""
        try:
            uuid.UUID(payment_id)
        except ValueError:
            return problem(404, "not-found", "Payment not found", f"no payment {payment_id}")
        try:
            row = await store.get(payment_id)
        except DatabaseUnavailable as exc:
            return problem(503, "database-unavailable", "Database unavailable", str(exc))
        if row is None:
            return problem(404, "not-found", "Payment not found", f"no payment {payment_id}")
        return _json(200, payment_json(row))

    @app.get("/healthz")
    async def healthz() -> Response:
        """Liveness: the process serves HTTP."""
        return _json(200, {"status": "ok"})

    @app.get(
        "/readyz",
        responses={503: {"description": "The database does not answer"}},
    )
    async def readyz() -> Response:
        """Readiness: the database answers."""
        try:
            await store.ping()
        except DatabaseUnavailable as exc:
            return _json(
                503, {"status": "not ready", "database": "unavailable", "detail": str(exc)}
            )
        return _json(200, {"status": "ready", "database": "ok"})

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    from paychaos.stack.api.leak import install_leak_routes  # the app-leak fault's admin hook

    install_leak_routes(app)
    install_order_label_routes(app, order_label)  # the bad deploy's per-order metric
    app.state.service = service
    traced = TelemetryMiddleware(
        app, metrics=metrics, tracer=tracer, max_body_bytes=settings.max_body_bytes
    )
    if not settings.cors_origins:
        return traced
    # Outside the telemetry: a preflight is the browser's, not a checkout (no span, no
    # RED sample); the checkout after it carries the page's traceparent, which the
    # preflight must allow, with the Idempotency-Key.
    return CORSMiddleware(
        traced,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "PUT", "OPTIONS"],
        allow_headers=list(CORS_HEADERS),
        max_age=600,
    )
