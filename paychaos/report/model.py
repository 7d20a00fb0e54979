"""The run journal: everything a run did and saw, as plain dataclasses (JSON-ready).

The runner fills a :class:`RunRecord`; the JSON, JUnit and HTML reports and
the history are views of it. Statuses:

- run: ``passed`` | ``failed`` (an expectation or recovery did not hold) |
  ``aborted`` (steady state not met before the first fault: nothing injected) |
  ``interrupted`` (SIGINT/SIGTERM; faults reverted) | ``error`` (the run could
  not be carried out, e.g. a fault could not be injected);
- expectation: ``passed`` | ``failed`` | ``not_run``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

RunStatus = Literal["passed", "failed", "aborted", "skipped", "interrupted", "error"]
ExpStatus = Literal["passed", "failed", "not_run", "pending"]


@dataclass
class FaultRecord:
    """One fault step: when it was planned, injected and reverted."""

    id: str
    fault: str
    target: str
    params: dict[str, Any]
    at_s: float
    duration_s: float
    injected_unix_s: float | None = None
    reverted_unix_s: float | None = None
    error: str = ""
    facts: dict[str, str] = field(default_factory=dict)
    """What the injection chose at run time (a card tester's ``customer_id``...)."""


@dataclass
class ExpectationRecord:
    """One expectation's outcome and timings (seconds from its fault's injection)."""

    name: str
    type: str
    description: str
    mode: str
    after: str | None
    within_s: float
    status: ExpStatus = "pending"
    detail: str = ""
    detected_s: float | None = None
    floor_s: float | None = None
    observed_unix_s: float | None = None
    notification: bool = False
    """An alert expectation that also waits for the notification (``detected_s`` is then
    when it was notified, ``fired_s`` when Prometheus reported it firing)."""
    fired_s: float | None = None
    """Alerts only: seconds from the fault until the alert was seen firing (also when the
    expectation failed, e.g. fired but never notified, or fired though it must not)."""
    fired_floor_s: float | None = None
    """Alerts only: the floor of ``fired_s`` (the floor without Alertmanager's group_wait)."""
    signal: str = ""
    """The signal an expectation that can read several reads (a culprit: ``trace`` or
    ``log``): its column in the matrix."""
    active_s: float | None = None
    """Alerts only: when Prometheus says the alert became active (pending, then firing),
    seconds from the fault; negative: it was active before the fault, so its firing is
    not this fault's detection."""

    @property
    def over_floor_s(self) -> float | None:
        if self.detected_s is None or self.floor_s is None:
            return None
        return self.detected_s - self.floor_s


@dataclass
class ProbeRecord:
    """One steady-state probe, before or after the faults."""

    phase: Literal["before", "after"]
    name: str
    ok: bool
    detail: str


@dataclass
class AlertEvent:
    """An alert seen firing during the run (first and last time it was seen)."""

    name: str
    labels: dict[str, str]
    first_unix_s: float
    last_unix_s: float


#: Labels every alert of a rule carries alike (the rule's own): no help telling two apart.
RULE_LABELS = frozenset({"severity", "component", "team"})


def distinguishing_labels(event: AlertEvent, events: list[AlertEvent]) -> dict[str, str]:
    """The labels that tell ``event`` from the other firings of the same alert
    (``operation="select_payment"``); for a lone firing, all but the rule's own."""
    same = [e for e in events if e.name == event.name]
    if len(same) > 1:
        keys = {k for e in same for k in e.labels if len({x.labels.get(k) for x in same}) > 1}
    else:
        keys = set(event.labels) - RULE_LABELS
    return {k: v for k, v in sorted(event.labels.items()) if k in keys}


def alert_title(name: str, labels: dict[str, str]) -> str:
    """``DatabaseLatencyHigh{operation="select_payment"}``."""
    shown = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{shown}}}" if shown else name


@dataclass
class LateFiring:
    """An alert that first fired after the run declared recovery."""

    name: str
    labels: dict[str, str]
    after_recovery_s: float

    @property
    def title(self) -> str:
        return alert_title(self.name, self.labels)


@dataclass
class SeriesRecord:
    """One plotted series: ``points`` are ``[unix_s, value]``."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


@dataclass
class RunRecord:
    """The journal of one scenario run."""

    scenario: str
    description: str
    source: str
    status: RunStatus = "error"
    failure_mode: str = ""
    """The scenario's human label for the way checkout breaks (its row in the matrix)."""
    started_unix_s: float = 0.0
    traffic_started_unix_s: float = 0.0
    ended_unix_s: float = 0.0
    reason: str = ""
    faults: list[FaultRecord] = field(default_factory=list)
    expectations: list[ExpectationRecord] = field(default_factory=list)
    probes: list[ProbeRecord] = field(default_factory=list)
    recovered_s: float | None = None
    recovery_within_s: float = 0.0
    recovery_floor_s: float | None = None
    alert_events: list[AlertEvent] = field(default_factory=list)
    traffic: dict[str, float] = field(default_factory=dict)
    client_timeline: list[tuple[float, float, float]] = field(default_factory=list)
    series: dict[str, list[SeriesRecord]] = field(default_factory=dict)
    stack: dict[str, Any] = field(default_factory=dict)
    traffic_driver: str = ""
    fault_driver: str = ""
    guard: dict[str, Any] | None = None
    """The stop condition that aborted the run: name, detail, when, how fast faults were reverted."""

    @property
    def duration_s(self) -> float:
        return max(0.0, self.ended_unix_s - self.started_unix_s)

    @property
    def recovered_unix_s(self) -> float | None:
        """When the run declared the steady state back (None: not recovered)."""
        reverts = [f.reverted_unix_s for f in self.faults if f.reverted_unix_s is not None]
        if self.recovered_s is None or not reverts:
            return None
        return max(reverts) + self.recovered_s

    def late_firings(self) -> list[LateFiring]:
        """Alerts that first fired after the run declared recovery: shown as late
        firings (the recovery time stays the probes' answer)."""
        recovered = self.recovered_unix_s
        if recovered is None:
            return []
        return [
            LateFiring(
                e.name, distinguishing_labels(e, self.alert_events), e.first_unix_s - recovered
            )
            for e in self.alert_events
            if e.first_unix_s > recovered
        ]

    def times_below_floor(self) -> list[str]:
        """Every reported time below its floor (a floor is a lower bound: this is empty
        unless a floor or a measurement is wrong)."""
        out = []
        for exp in self.expectations:
            if exp.active_s is not None and exp.active_s < 0:
                continue  # active before its fault: no detection of it (the matrix says so)
            pairs = (
                ("detected", exp.detected_s, exp.floor_s),
                ("fired", exp.fired_s, exp.fired_floor_s),
            )
            for what, seen, floor in pairs:
                if (
                    exp.mode == "eventually"
                    and seen is not None
                    and floor is not None
                    and seen < floor
                ):
                    out.append(f"{exp.name}: {what} {seen:.2f}s < floor {floor:.2f}s")
        rec, floor = self.recovered_s, self.recovery_floor_s
        if rec is not None and floor is not None and rec < floor:
            out.append(f"recovery {rec:.2f}s < floor {floor:.2f}s")
        return out

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["duration_s"] = self.duration_s
        data["late_firings"] = [dataclasses.asdict(x) for x in self.late_firings()]
        data["times_below_floor"] = self.times_below_floor()
        for exp, raw in zip(self.expectations, data["expectations"], strict=True):
            raw["over_floor_s"] = exp.over_floor_s
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """The record :meth:`to_dict` wrote (derived fields are dropped; unknown keys refused).

        Raises ``TypeError`` or ``KeyError`` on a document that is not a run record.
        """
        derived = ("duration_s", "late_firings", "times_below_floor")
        raw = {k: v for k, v in data.items() if k not in derived}
        raw["faults"] = [FaultRecord(**f) for f in raw.get("faults", [])]
        raw["expectations"] = [
            ExpectationRecord(**{k: v for k, v in e.items() if k != "over_floor_s"})
            for e in raw.get("expectations", [])
        ]
        raw["probes"] = [ProbeRecord(**p) for p in raw.get("probes", [])]
        raw["alert_events"] = [AlertEvent(**a) for a in raw.get("alert_events", [])]
        raw["client_timeline"] = [tuple(t) for t in raw.get("client_timeline", [])]
        raw["series"] = {
            name: [
                SeriesRecord(labels=s["labels"], points=[(p[0], p[1]) for p in s["points"]])
                for s in series
            ]
            for name, series in raw.get("series", {}).items()
        }
        return cls(**raw)


def suite_status(records: list[RunRecord]) -> RunStatus:
    """The worst status of a suite: interrupted > error > failed > aborted > passed.

    A scenario *skipped* because the target cannot run it does not fail a suite.
    """
    order: list[RunStatus] = ["interrupted", "error", "failed", "aborted"]
    for status in order:
        if any(r.status == status for r in records):
            return status
    return "passed"
