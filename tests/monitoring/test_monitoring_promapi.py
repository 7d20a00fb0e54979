"""API clients against a fake transport; wait_until and the in-memory source."""

from __future__ import annotations

import json

import pytest

from paychaos.contracts.errors import ExpectationFailed, InvalidInput, StackError
from paychaos.stack.monitoring import (
    ActiveAlert,
    AlertmanagerClient,
    InMemoryMetricsSource,
    MetricsSource,
    PrometheusClient,
    Sample,
    wait_until,
)
from paychaos.stack.monitoring.promapi import HttpResponse
from paychaos.stack.service import free_port

BASE = "http://127.0.0.1:9090"


class FakeTransport:
    """Answers every request with one canned response and records the URLs."""

    def __init__(self, status: int, payload: object) -> None:
        self.response = HttpResponse(status, json.dumps(payload).encode())
        self.urls: list[str] = []

    def __call__(self, method: str, url: str, timeout_s: float) -> HttpResponse:
        self.urls.append(url)
        return self.response


def test_query_parses_a_vector() -> None:
    payload = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"method": "amex"}, "value": [1700000000.0, "5"]},
                {"metric": {"method": "visa"}, "value": [1700000000.0, "NaN"]},
            ],
        },
    }
    transport = FakeTransport(200, payload)
    samples = PrometheusClient(BASE, transport=transport).query("x", at=1700000000.5)
    (labels, value), nan = samples
    assert labels == {"method": "amex"}
    assert value == 5.0
    assert nan.value != nan.value
    assert "time=1700000000.500" in transport.urls[0]


def test_api_error_becomes_stack_error_naming_the_url() -> None:
    payload = {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}
    client = PrometheusClient(BASE, transport=FakeTransport(400, payload))
    with pytest.raises(StackError, match=r"127\.0\.0\.1:9090/api/v1/query.*bad_data.*parse error"):
        client.query("sum(")


def test_non_json_error_page_becomes_stack_error() -> None:
    def transport(method: str, url: str, timeout_s: float) -> HttpResponse:
        return HttpResponse(503, b"Service Unavailable")

    with pytest.raises(StackError, match="HTTP 503"):
        AlertmanagerClient("http://127.0.0.1:9093", transport=transport).alerts()


def test_connection_refused_becomes_stack_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StackError, match=url):
        PrometheusClient(url, timeout_s=2).alerts()


def test_alerts_parse_state_labels_and_active_at() -> None:
    payload = {
        "status": "success",
        "data": {
            "alerts": [
                {
                    "labels": {"alertname": "ServiceDown", "job": "gateway"},
                    "annotations": {"summary": "gateway is down"},
                    "state": "firing",
                    "activeAt": "2024-05-01T10:00:00.123456789Z",
                    "value": "0e+00",
                }
            ]
        },
    }
    (alert,) = PrometheusClient(BASE, transport=FakeTransport(200, payload)).alerts()
    assert alert.name == "ServiceDown"
    assert alert.firing
    assert alert.active_at is not None
    assert alert.active_at.microsecond == 123456
    assert alert.value == 0.0


def test_base_url_must_be_http() -> None:
    with pytest.raises(InvalidInput, match="http"):
        PrometheusClient("127.0.0.1:9090")


def test_prometheus_client_and_memory_source_implement_metrics_source() -> None:
    assert isinstance(PrometheusClient(BASE), MetricsSource)
    assert isinstance(InMemoryMetricsSource(), MetricsSource)


def test_wait_until_returns_once_the_signal_appears() -> None:
    now = [0.0]
    source = InMemoryMetricsSource(clock=lambda: now[0])
    source.set_query("up", lambda at: [Sample({"job": "api"}, 1.0 if at >= 3 else 0.0)])

    def sleep(seconds: float) -> None:
        now[0] += seconds

    samples = wait_until(
        source,
        "up",
        lambda s: bool(s) and s[0].value == 1.0,
        timeout_s=10,
        poll_s=1,
        clock=lambda: now[0],
        sleep=sleep,
    )
    assert samples == [Sample({"job": "api"}, 1.0)]
    assert len(source.queries) == 4


def test_wait_until_times_out_with_the_last_result() -> None:
    now = [0.0]
    source = InMemoryMetricsSource()
    source.set_query("up", [Sample({"job": "api"}, 0.0)])

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(ExpectationFailed, match=r"'up' did not .* 5 s .*'job': 'api'"):
        wait_until(
            source, "up", lambda s: False, timeout_s=5, poll_s=2, clock=lambda: now[0], sleep=sleep
        )
    assert len(source.queries) == 4


def test_memory_source_strict_mode_and_alerts() -> None:
    source = InMemoryMetricsSource(strict=True)
    with pytest.raises(StackError, match="no answer"):
        source.query("missing")
    source.add_alert(ActiveAlert("InstanceOOMKill", "firing", {"component": "instance"}))
    assert [a.name for a in source.alerts() if a.firing] == ["InstanceOOMKill"]
