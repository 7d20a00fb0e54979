"""Expectation checks: one interface (:class:`Check`), one module per signal type."""

from __future__ import annotations

from paychaos.checks.alert import AlertCheck
from paychaos.checks.build import build_check
from paychaos.checks.hygiene import HygieneCheck
from paychaos.checks.ledger import LedgerCheck
from paychaos.checks.log import LogCheck
from paychaos.checks.metric import MetricCheck, probe_metric, probe_no_alerts
from paychaos.checks.rum import RumCheck
from paychaos.checks.trace import TraceCheck
from paychaos.contracts.expectations import (
    Check,
    CheckContext,
    CheckMode,
    ClientLedger,
    Observation,
    Window,
)

__all__ = [
    "AlertCheck",
    "Check",
    "CheckContext",
    "CheckMode",
    "ClientLedger",
    "HygieneCheck",
    "LedgerCheck",
    "LogCheck",
    "MetricCheck",
    "Observation",
    "RumCheck",
    "TraceCheck",
    "Window",
    "build_check",
    "probe_metric",
    "probe_no_alerts",
]
