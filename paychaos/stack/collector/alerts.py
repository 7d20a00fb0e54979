"""Alertmanager webhook notifications (payload ``version: "4"``).

Each notification carries a group of alerts; every alert becomes one
:class:`~paychaos.contracts.signals.AlertNotification`, keeping the notification's
receiver, group key and status next to the alert's own labels and status.
"""

from __future__ import annotations

from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from paychaos.contracts.messages import field_errors, json_error, summary
from paychaos.contracts.signals import AlertNotification

from .otlp import MalformedPayload


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WebhookAlert(_Model):
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str = ""
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = ""


class WebhookMessage(_Model):
    """The JSON body Alertmanager POSTs to a ``webhook_config`` URL."""

    version: str = "4"
    groupKey: str = ""
    truncatedAlerts: int = 0
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[WebhookAlert]


def parse_webhook(body: bytes) -> WebhookMessage:
    """Validate a webhook body; raise :class:`MalformedPayload` (answered with 400)."""
    what = "not an Alertmanager webhook payload"
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedPayload(f"{what}: the body is not JSON: {json_error(exc)}") from None
    try:
        message = WebhookMessage.model_validate(document)
    except ValidationError as exc:
        raise MalformedPayload(f"{what}: {summary(field_errors(exc.errors()))}") from None
    if message.version != "4":
        raise MalformedPayload(f"unsupported webhook payload version {message.version!r}")
    return message


def notifications(message: WebhookMessage, received_unix_ns: int) -> list[AlertNotification]:
    return [
        AlertNotification(
            alertname=alert.labels.get("alertname", ""),
            status=alert.status,
            labels=dict(alert.labels),
            annotations=dict(alert.annotations),
            starts_at=alert.startsAt,
            ends_at=alert.endsAt,
            received_unix_ns=received_unix_ns,
            receiver=message.receiver,
            group_key=message.groupKey,
            notification_status=message.status,
            generator_url=alert.generatorURL,
            fingerprint=alert.fingerprint,
        )
        for alert in message.alerts
    ]
