"""The payment gateway simulator: stands for Stripe / PayPal / VISA / crypto processors.

Run it as ``python -m paychaos.stack.gateway --port 8101 [--seed N] [--latency-scale F]
[--profiles FILE.yaml] [--ledger PATH] [--admin-token TOKEN]``.

- :mod:`.profiles`   per-method latency and decline model
- :mod:`.charges`    validation of a charge request
- :mod:`.processor`  the charge pipeline (idempotency, faults, decline)
- :mod:`.ledger`     every charge created, queryable, persisted as JSONL
- :mod:`.behaviours` admin-injected faults with a TTL
- :mod:`.metrics`    Prometheus metrics
- :mod:`.app`        the Starlette app
"""

from __future__ import annotations

from .app import ADMIN_TOKEN_ENV, SERVICE_NAME, Gateway, GatewayConfig, create_app
from .behaviours import BehaviourSpec, BehaviourStore, InvalidBehaviour, parse_behaviour
from .charges import ChargeRequest, InvalidRequest, parse_charge
from .ledger import Charge, Ledger
from .profiles import DEFAULT_PROFILES, METHODS, MethodProfile, Sampler, load_profiles

__all__ = [
    "ADMIN_TOKEN_ENV",
    "DEFAULT_PROFILES",
    "METHODS",
    "SERVICE_NAME",
    "BehaviourSpec",
    "BehaviourStore",
    "Charge",
    "ChargeRequest",
    "Gateway",
    "GatewayConfig",
    "InvalidBehaviour",
    "InvalidRequest",
    "Ledger",
    "MethodProfile",
    "Sampler",
    "create_app",
    "load_profiles",
    "parse_behaviour",
    "parse_charge",
]
