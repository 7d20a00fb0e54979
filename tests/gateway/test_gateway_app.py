"""The gateway's ASGI app in-process: tracing, admin guard, processor edge cases."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry, generate_latest

from paychaos.stack.gateway import GatewayConfig, create_app
from paychaos.stack.gateway.app import SERVICE_NAME

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


async def asgi_call(
    app: Any,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    client: tuple[str, int] = ("127.0.0.1", 40000),
) -> tuple[int, dict[str, str], Any]:
    """Drive one HTTP request through an ASGI app without a server."""
    path_only, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path_only,
        "raw_path": path_only.encode(),
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": client,
        "server": ("127.0.0.1", 8101),
    }
    sent = False
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    raw = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], response_headers, orjson.loads(raw) if raw else None


def make_app(**config: Any) -> tuple[Any, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = {"latency_scale": 0.0, "seed": 3, "admin_token": "tok-admin", **config}
    app = create_app(
        GatewayConfig(**settings),
        registry=CollectorRegistry(),
        tracer=provider.get_tracer(SERVICE_NAME),
    )
    return app, exporter


def charge_payload(method: str = "visa") -> bytes:
    return orjson.dumps(
        {
            "amount_cents": 1999,
            "currency": "USD",
            "method": method,
            "source": {"card_token": "tok_visa_abc", "last4": "4242"},
            "payment_id": "pay-1",
        }
    )


def test_server_span_is_child_of_incoming_traceparent() -> None:
    app, exporter = make_app()
    headers = {
        "Idempotency-Key": "trace-1",
        "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
        "content-type": "application/json",
    }
    status, _, _ = asyncio.run(asgi_call(app, "POST", "/v1/charges", charge_payload(), headers))
    assert status == 201
    (span,) = exporter.get_finished_spans()
    assert span.name == "POST /v1/charges"
    assert span.kind == SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert span.resource.attributes["service.name"] == "payment-gateway"
    attributes = dict(span.attributes or {})
    assert attributes["payment.method"] == "visa"
    assert attributes["gateway.outcome"] == "succeeded"
    assert attributes["http.response.status_code"] == 201
    assert attributes["payment.idempotency_key"] == "trace-1"
    assert "tok_visa_abc" not in str(attributes)


def test_injected_5xx_marks_the_span_as_error() -> None:
    app, exporter = make_app()
    admin = {"Authorization": "Bearer tok-admin"}

    async def scenario() -> int:
        behaviour = orjson.dumps({"method": "visa", "error_rate": 1, "ttl_s": 10})
        status, _, _ = await asgi_call(app, "POST", "/admin/behaviours", behaviour, admin)
        assert status == 201
        headers = {"Idempotency-Key": "err-1"}
        status, _, _ = await asgi_call(app, "POST", "/v1/charges", charge_payload(), headers)
        return status

    assert asyncio.run(scenario()) == 503
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.parent is None  # no traceparent: a root span
    assert dict(span.attributes or {})["gateway.outcome"] == "error"


def test_admin_rejects_non_loopback_clients() -> None:
    app, _ = make_app()
    headers = {"Authorization": "Bearer tok-admin"}
    status, _, body = asyncio.run(
        asgi_call(app, "GET", "/admin/behaviours", headers=headers, client=("10.1.2.3", 5555))
    )
    assert status == 403
    assert body["error"]["type"] == "permission_error"


def test_admin_disabled_without_token() -> None:
    app, _ = make_app(admin_token=None)
    headers = {"Authorization": "Bearer anything"}
    status, _, body = asyncio.run(asgi_call(app, "GET", "/admin/behaviours", headers=headers))
    assert status == 403
    assert "disabled" in body["error"]["message"]


def test_hang_is_bounded_by_max_hang_and_answers_504() -> None:
    app, _ = make_app(max_hang_s=0.2)
    admin = {"Authorization": "Bearer tok-admin"}

    async def scenario() -> tuple[int, Any]:
        behaviour = orjson.dumps({"method": "visa", "timeout_rate": 1, "ttl_s": 60})
        await asgi_call(app, "POST", "/admin/behaviours", behaviour, admin)
        headers = {"Idempotency-Key": "hang-1"}
        status, _, body = await asyncio.wait_for(
            asgi_call(app, "POST", "/v1/charges", charge_payload(), headers), timeout=10
        )
        return status, body

    status, body = asyncio.run(scenario())
    assert status == 504
    assert body["error"]["type"] == "api_error"


def test_concurrent_same_key_in_process_gets_409() -> None:
    app, _ = make_app(latency_scale=1.0, seed=5)
    headers = {"Idempotency-Key": "same-1"}

    async def scenario() -> list[int]:
        first = asyncio.create_task(
            asgi_call(app, "POST", "/v1/charges", charge_payload(), headers)
        )
        await asyncio.sleep(0)  # let the first request take the key
        second = await asgi_call(app, "POST", "/v1/charges", charge_payload(), headers)
        return [(await first)[0], second[0]]

    assert asyncio.run(scenario()) in ([201, 409], [402, 409])


def test_metrics_registry_is_the_one_passed_in() -> None:
    registry = CollectorRegistry()
    app = create_app(GatewayConfig(latency_scale=0.0), registry=registry)
    asyncio.run(asgi_call(app, "POST", "/v1/charges", charge_payload(), {"Idempotency-Key": "m1"}))
    text = generate_latest(registry).decode()
    assert "gateway_charges_total" in text
    assert "process_cpu_seconds_total" in text
    assert "chaos_fault_active" in text


def test_bad_bodies_are_named_in_plain_words() -> None:
    app, _ = make_app()
    admin = {"Authorization": "Bearer tok-admin"}

    async def scenario() -> list[tuple[int, dict[str, str], Any]]:
        charge = b'{"amount_cents": 100,\n "currency": "USD" "method": "visa"}'
        behaviour = b'{"method": "visa",\n  "ttl_s": }'
        wrong_type = orjson.dumps({"method": "visa", "ttl_s": 60, "error_rate": "half"})
        return [
            await asgi_call(app, "POST", "/v1/charges", charge, {"Idempotency-Key": "bad-1"}),
            await asgi_call(app, "POST", "/admin/behaviours", behaviour, admin),
            await asgi_call(app, "POST", "/admin/behaviours", wrong_type, admin),
        ]

    (charge_status, _, charge), (b_status, _, b), (t_status, _, t) = asyncio.run(scenario())
    assert charge_status == 400 and b_status == 400 and t_status == 400
    charge_message = charge["error"]["message"]
    assert charge_message.startswith("the request body is not JSON: line 2, column 20"), charge
    assert "line 2, column 12" in b["error"]["message"], b
    assert t["error"]["param"] == "error_rate"
    for body in (charge, b, t):
        for internal in ("(char ", "https://", "Value error", "pydantic"):
            assert internal not in str(body), body
