"""The "bad deploy" metric: a checkout histogram labelled by order, switched on at run time.

The classic cardinality explosion: a release adds the order id (or the customer)
as a label "to debug slow orders". Every checkout then creates a new histogram
child — ``len(buckets) + 1`` bucket series, ``_sum``, ``_count`` and
``_created``, 21 series per order — so Prometheus' head series grow with the
traffic, without bound, until its memory runs out. The seed's metrics keep
their names and labels; the bad one is a separate metric,
:data:`METRIC_NAME`, with ``method``, ``status`` and ``order_id``.

``POST /admin/order-label {"ttl_s": 120}`` switches it on (the deployment);
at the TTL it switches itself off and unregisters, so its series go stale
(a rollback); ``DELETE /admin/order-label`` rolls back earlier. Guarded like
``/admin/leak`` (the stack's admin token, loopback clients only). The order id is
the request's ``order_id`` or, without one, its Idempotency-Key — both masked
like the logs (a client-chosen string can be a card number).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry, Histogram
from starlette.responses import JSONResponse

from paychaos.stack.api.leak import TOKEN_ENV, admin_denied
from paychaos.stack.api.metrics import LATENCY_BUCKETS_S
from paychaos.stack.telemetry import redact_pan

METRIC_NAME = "shop_checkout_order_duration_seconds"
SERIES_PER_ORDER = len(LATENCY_BUCKETS_S) + 1 + 3  # buckets and +Inf, _sum, _count, _created
MAX_TTL_S = 3600.0


class OrderLabel:
    """The bad metric, when deployed: :meth:`observe` is a no-op otherwise."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.histogram: Histogram | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def active(self) -> bool:
        return self.histogram is not None

    def deploy(self, ttl_s: float) -> None:
        if self.histogram is None:
            self.histogram = Histogram(
                METRIC_NAME,
                "Checkout duration by order (a per-order label: the bad deploy)",
                ["method", "status", "order_id"],
                buckets=LATENCY_BUCKETS_S,
                registry=self.registry,
            )
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(ttl_s, self.rollback)

    def rollback(self) -> bool:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        histogram, self.histogram = self.histogram, None
        if histogram is None:
            return False
        self.registry.unregister(histogram)
        return True

    def observe(self, method: str, status: str, order_id: str, elapsed_s: float) -> None:
        if self.histogram is not None:
            self.histogram.labels(method, status, redact_pan(order_id)[:64]).observe(elapsed_s)


def install_order_label_routes(
    app: FastAPI, order_label: OrderLabel, environ: Mapping[str, str] = os.environ
) -> None:
    """Add ``/admin/order-label`` (POST deploys the bad metric for ``ttl_s``, DELETE rolls back)."""
    token = environ.get(TOKEN_ENV)

    @app.post("/admin/order-label", include_in_schema=False)
    async def deploy(request: Request) -> JSONResponse:
        if (denied := admin_denied(request, token)) is not None:
            return denied
        try:
            ttl_s = float((await request.json())["ttl_s"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "body: ttl_s required"}, status_code=400)
        if not 0 < ttl_s <= MAX_TTL_S:
            return JSONResponse({"error": f"ttl_s 0..{MAX_TTL_S:.0f}"}, status_code=400)
        order_label.deploy(ttl_s)
        return JSONResponse(
            {"metric": METRIC_NAME, "series_per_order": SERIES_PER_ORDER, "ttl_s": ttl_s},
            status_code=201,
        )

    @app.delete("/admin/order-label", include_in_schema=False)
    async def rollback(request: Request) -> JSONResponse:
        if (denied := admin_denied(request, token)) is not None:
            return denied
        return JSONResponse({"metric": METRIC_NAME, "rolled_back": order_label.rollback()})
