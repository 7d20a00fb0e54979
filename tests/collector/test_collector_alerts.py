"""Alertmanager webhook notifications (v4) stored, counted and queryable."""

from __future__ import annotations

import json

from collector_harness import RunningCollector

from paychaos.contracts.signals import AlertQuery
from paychaos.stack.collector.client import CollectorClient


def webhook(status: str, alerts: list[dict[str, object]]) -> bytes:
    return json.dumps(
        {
            "version": "4",
            "groupKey": '{}:{alertname="PaymentErrorRateHigh"}',
            "truncatedAlerts": 0,
            "status": status,
            "receiver": "paychaos",
            "groupLabels": {"alertname": "PaymentErrorRateHigh"},
            "commonLabels": {"alertname": "PaymentErrorRateHigh", "severity": "critical"},
            "commonAnnotations": {"summary": "payments failing"},
            "externalURL": "http://127.0.0.1:9093",
            "alerts": alerts,
        }
    ).encode()


def alert(method: str, status: str) -> dict[str, object]:
    return {
        "status": status,
        "labels": {"alertname": "PaymentErrorRateHigh", "severity": "critical", "method": method},
        "annotations": {"summary": f"{method} payments failing"},
        "startsAt": "2024-05-01T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2024-05-01T10:05:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=x",
        "fingerprint": f"fp-{method}",
    }


def test_webhook_notifications_are_queryable(collector: RunningCollector) -> None:
    headers = {"Content-Type": "application/json"}
    firing = webhook("firing", [alert("amex", "firing"), alert("visa", "firing")])
    assert collector.post("/alertmanager/webhook", firing, headers)[0] == 200
    resolved = webhook("resolved", [alert("amex", "resolved")])
    assert collector.post("/alertmanager/webhook", resolved, headers)[0] == 200

    client = CollectorClient(collector.base_url)
    all_alerts = client.find_alert_notifications(AlertQuery(alertname="PaymentErrorRateHigh"))
    assert [(a.labels["method"], a.status) for a in all_alerts] == [
        ("amex", "resolved"),
        ("visa", "firing"),
        ("amex", "firing"),
    ]
    amex_firing = client.find_alert_notifications(
        AlertQuery(status="firing", labels={"method": "amex"})
    )
    assert len(amex_firing) == 1
    note = amex_firing[0]
    assert note.receiver == "paychaos"
    assert note.fingerprint == "fp-amex"
    assert note.annotations == {"summary": "amex payments failing"}
    assert note.notification_status == "firing"
    assert note.starts_at == "2024-05-01T10:00:00Z"
    assert client.find_alert_notifications(AlertQuery(alertname="Other")) == []
    assert (
        collector.metric(
            'alertmanager_notifications_received_total{alertname="PaymentErrorRateHigh",status="firing"}'
        )
        == 2
    )
    assert (
        collector.metric(
            'alertmanager_notifications_received_total{alertname="PaymentErrorRateHigh",status="resolved"}'
        )
        == 1
    )
