"""Typed results of the Prometheus and Alertmanager APIs (frozen, no raw dicts).

These are what :class:`~paychaos.stack.monitoring.promapi.MetricsSource` returns, so the
expectation checks and the in-memory source share one vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple, Protocol, runtime_checkable


class Sample(NamedTuple):
    """One element of an instant vector: ``labels, value = sample``."""

    labels: Mapping[str, str]
    value: float


class Series(NamedTuple):
    """One element of a range vector: labels and ``(unix_time_s, value)`` points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class ActiveAlert:
    """An alert Prometheus is evaluating as ``pending`` or ``firing``."""

    name: str
    state: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    active_at: datetime | None = None
    value: float | None = None

    @property
    def firing(self) -> bool:
        return self.state == "firing"


@dataclass(frozen=True)
class RuleInfo:
    """One loaded rule: ``kind`` is ``"alerting"`` or ``"recording"``."""

    group: str
    name: str
    kind: str
    query: str
    health: str
    labels: Mapping[str, str] = field(default_factory=dict)
    duration_s: float = 0.0
    last_error: str = ""


@dataclass(frozen=True)
class TargetHealth:
    """Health of one scrape target (``health`` is ``up``, ``down`` or ``unknown``)."""

    job: str
    instance: str
    health: str
    scrape_url: str = ""
    last_error: str = ""

    @property
    def up(self) -> bool:
        return self.health == "up"


@dataclass(frozen=True)
class NotifiedAlert:
    """An alert held by Alertmanager (``state``: ``active``, ``suppressed``, ``unprocessed``)."""

    name: str
    state: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    fingerprint: str = ""
    receivers: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertmanagerStatus:
    """What ``/api/v2/status`` says: version, cluster state, uptime, loaded config."""

    version: str
    cluster_status: str
    uptime: datetime | None
    config_yaml: str


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(text: object) -> datetime | None:
    """RFC 3339 time from the APIs (nanoseconds allowed) as an aware datetime.

    Missing values and Go's zero time (``0001-01-01T00:00:00Z``) give ``None``.
    """
    if not isinstance(text, str) or not text or text.startswith("0001-01-01"):
        return None
    cleaned = _FRACTION.sub(r"\1", text.replace("Z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@runtime_checkable
class MetricsSource(Protocol):
    """Read-only access to metrics and alerts, as the expectation checks need it."""

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        """Evaluate ``expr`` at unix time ``at`` (default: now) as an instant vector."""
        ...

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[Series]:
        """Evaluate ``expr`` from ``start`` to ``end`` every ``step_s`` seconds."""
        ...

    def alerts(self) -> list[ActiveAlert]:
        """Alerts currently pending or firing."""
        ...
