"""Realistic checkout traffic for Locust: shoppers, shapes, open model, ledger, checks.

The locustfile (``locustfiles/checkout.py``) is thin; everything lives here::

    catalog     faker pools: customers, carts, payment tokens
    model       the shopper model every driver shares: purchases, retries, RUM, ledger line
    adapter     the target's checkout adapter at run time (requests, verdicts, read-back)
    shopper     the Locust user (closed and open model)
    rum         Faro RUM journeys (what a simulated browser collects)
    rum_sender  their pipelined background sender
    tracing     the shopper's ``checkout`` client span, W3C traceparent
    ledger      the client ledger (JSONL per process)
    reconcile   client ledger vs the shop's read-back (and the gateway's ledger)
    profiles    load shapes as functions of time (steady, ramp, diurnal, flash-sale, step)
    shapes      the Locust LoadTestShape driven by a profile
    open_model  Poisson arrival schedule
    business    payments per method/outcome (web UI tab, console, workers)
    thresholds  pass/fail of a plain Locust run
    options     the Locust flags, validated
    plugin      the Locust event wiring

Importing this package does not import Locust (and so does not monkey-patch
with gevent); :mod:`paychaos.traffic.reconcile` and
:mod:`paychaos.traffic.ledger` are safe to use from any process.
"""

from __future__ import annotations
