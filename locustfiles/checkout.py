"""Realistic checkout traffic: ``locust -f locustfiles/checkout.py``.

With no ``--host`` it starts the embedded stack and stops it when Locust quits;
with ``--host`` it drives any deployment of the payment API. See the README's
"Traffic (Locust)" section and ``locust -f locustfiles/checkout.py --help``.
"""

from __future__ import annotations

from locust import events

from paychaos.locust.plugin import install
from paychaos.traffic.shopper import Shopper

__all__ = ["Shopper"]

install(events)
