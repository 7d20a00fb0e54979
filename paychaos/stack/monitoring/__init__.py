"""Configuration and processes of the real Prometheus and Alertmanager.

- :mod:`paychaos.stack.monitoring.config`     render ``prometheus.yml`` / ``alertmanager.yml``
- :mod:`paychaos.stack.monitoring.processes`  :class:`~paychaos.stack.process.ProcessSpec` for both
  binaries, ``find_binary`` and the ``promtool``/``amtool`` checks
- :mod:`paychaos.stack.monitoring.promapi`    HTTP API clients and the :class:`MetricsSource`
  interface the expectation checks read through
- :mod:`paychaos.stack.monitoring.memory`     an in-memory :class:`MetricsSource` for tests

The alert rules themselves live in ``stack/prometheus/rules`` with their promtool
unit tests in ``stack/prometheus/tests``.
"""

from __future__ import annotations

from paychaos.contracts.metrics import MetricsSource
from paychaos.stack.monitoring.config import (
    EMBEDDED_INTERVAL_S,
    PRODUCTION_INTERVAL_S,
    RULES_DIR,
    AlertmanagerSettings,
    PrometheusSettings,
    ScrapeTarget,
    render_alertmanager_config,
    render_prometheus_config,
    write_config,
)
from paychaos.stack.monitoring.memory import InMemoryMetricsSource
from paychaos.stack.monitoring.processes import (
    alertmanager_spec,
    check_alertmanager_config,
    check_config,
    check_rules,
    find_binary,
    prometheus_spec,
    run_rule_tests,
)
from paychaos.stack.monitoring.promapi import (
    ActiveAlert,
    AlertmanagerClient,
    NotifiedAlert,
    PrometheusClient,
    Sample,
    Series,
    TargetHealth,
    wait_until,
)

__all__ = [
    "EMBEDDED_INTERVAL_S",
    "PRODUCTION_INTERVAL_S",
    "RULES_DIR",
    "ActiveAlert",
    "AlertmanagerClient",
    "AlertmanagerSettings",
    "InMemoryMetricsSource",
    "MetricsSource",
    "NotifiedAlert",
    "PrometheusClient",
    "PrometheusSettings",
    "Sample",
    "ScrapeTarget",
    "Series",
    "TargetHealth",
    "alertmanager_spec",
    "check_alertmanager_config",
    "check_config",
    "check_rules",
    "find_binary",
    "prometheus_spec",
    "render_alertmanager_config",
    "render_prometheus_config",
    "run_rule_tests",
    "wait_until",
    "write_config",
]
