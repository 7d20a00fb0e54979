"""The API's metrics exist before the events they count: a series born with its first
event hides that event from ``rate()`` and ``increase()``, which need two samples."""

from __future__ import annotations

from typing import get_args

from prometheus_client import generate_latest

from paychaos.contracts.domain import METHODS
from paychaos.stack.api.gateway_client import Outcome
from paychaos.stack.api.metrics import GATEWAY_OUTCOMES, PAYMENT_STATUSES, create_metrics


def test_the_gateway_outcomes_are_the_clients_own() -> None:
    assert get_args(Outcome) == GATEWAY_OUTCOMES


def test_every_gateway_outcome_series_starts_at_zero() -> None:
    text = generate_latest(create_metrics().registry).decode()
    for method in METHODS:
        for outcome in GATEWAY_OUTCOMES:
            line = (
                "shop_gateway_request_duration_seconds_count"
                f'{{method="{method}",outcome="{outcome}"}} 0.0'
            )
            assert line in text, line
        for status in PAYMENT_STATUSES:
            assert f'shop_payments_total{{method="{method}",status="{status}"}} 0.0' in text
