"""One interface for every expectation type, and the context checks read from.

A :class:`Check` is asked :meth:`~Check.observe` over a time :class:`Window`
and answers an :class:`Observation` (was the signal seen, where, when).
How the runner uses the answer depends on the check's ``mode``:

- ``eventually``: polled until the signal is seen (met; time-to-detect is
  measured from the fault's injection) or the deadline passes (failed);
- ``never``: polled over the whole window; seeing the signal fails it;
- ``final``: observed once after recovery (ledger, hygiene); seen = holds.

Checks only read: they never change the system under test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from paychaos.contracts.metrics import MetricsSource
from paychaos.contracts.signals import AlertNotificationSource, LogSource, RumSource, TraceSource
from paychaos.contracts.target import Checkout

CheckMode = Literal["eventually", "never", "final"]


@dataclass(frozen=True)
class Window:
    """Unix-time window ``[since_unix_s, until_unix_s)`` a check looks at."""

    since_unix_s: float
    until_unix_s: float | None = None


@dataclass(frozen=True)
class Observation:
    """What a check saw: ``seen`` the signal (or, for final checks, the property holds)."""

    seen: bool
    detail: str
    at_unix_s: float | None = None
    stages: Mapping[str, float] = field(default_factory=dict)
    """Stages reached on the way to ``seen`` (name → unix time), reported even when not
    ``seen`` yet: an alert check reports ``fired`` before its notification arrives."""


class ClientLedger(Protocol):
    """Where the traffic driver's client-side ledger is (``ledger-*.jsonl`` files,
    the format of :mod:`paychaos.traffic.ledger`)."""

    def ledger_paths(self) -> Sequence[Path]: ...


@dataclass
class CheckContext:
    """Everything checks read: metrics, traces, logs, RUM, notifications, ledgers."""

    metrics: MetricsSource
    traces: TraceSource
    logs: LogSource
    rum: RumSource
    notifications: AlertNotificationSource
    api_url: str = ""
    gateway_url: str = ""
    client_ledger: ClientLedger | None = None
    checkout: Checkout | None = None
    """The target's checkout API and adapter (how to read a payment back); None: paychaos'
    own API at ``api_url``."""
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    baseline: dict[str, float] = field(default_factory=dict)
    injected: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per fault step id, what its injection chose at run time (a card tester's
    ``customer_id``): the truth a ``culprit`` expectation compares the telemetry with."""


class Check(Protocol):
    """An expectation, ready to observe. Implementations may keep state between polls."""

    mode: CheckMode
    description: str
    requires: list[str]
    """The target capabilities the check reads (see :mod:`paychaos.contracts.target`)."""

    def observe(self, ctx: CheckContext, window: Window) -> Observation: ...


__all__ = [
    "Check",
    "CheckContext",
    "CheckMode",
    "ClientLedger",
    "Observation",
    "Window",
]
