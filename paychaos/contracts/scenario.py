"""The typed, frozen scenario schema: what a ``scenarios/*.yaml`` file may say.

A scenario is traffic + a steady-state hypothesis + fault steps on a timeline +
expectations with deadlines + a recovery deadline + a rollback policy. Times
are seconds from the start of traffic (``at_s``) or from a fault's injection
(``within_s``). Example (annotated in README.md, ``## Scenarios``)::

    name: db-latency
    traffic: {rate_per_s: 20, duration_s: 90}
    faults: [{id: slow-db, fault: db-latency, at_s: 20, duration_s: 40,
              params: {latency_ms: 400}}]
    expectations:
      - {type: alert, alert: DatabaseLatencyHigh, after: slow-db, within_s: 60}

Every model forbids unknown keys (a typo is an error, not a silently ignored
field). Fault ``params`` are a flat map of scalars here; the fault catalog
validates them into a typed model (see :mod:`paychaos.scenario.load`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from paychaos.contracts.domain import CARD_TESTING_FAULT, DEFAULT_MIX, Method

ParamValue = bool | int | float | str
Op = Literal[">", ">=", "<", "<=", "==", "!="]
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def compare(value: float, op: Op, threshold: float) -> bool:
    """``value op threshold``; a NaN never satisfies a condition."""
    if value != value:  # NaN
        return False
    return {
        ">": value > threshold,
        ">=": value >= threshold,
        "<": value < threshold,
        "<=": value <= threshold,
        "==": value == threshold,
        "!=": value != threshold,
    }[op]


# ------------------------------------------------------------------ traffic


class Traffic(_Model):
    """Checkout load: ``rate_per_s`` (open model) or ``users`` (closed model), not both."""

    shape: Literal["constant", "ramp"] = "constant"
    rate_per_s: float | None = Field(default=None, gt=0, le=500)
    users: int | None = Field(default=None, gt=0, le=500)
    mix: Mapping[Method, float] = Field(
        default_factory=lambda: cast("dict[Method, float]", dict(DEFAULT_MIX))
    )
    duration_s: float = Field(gt=0, le=3600)
    ramp_s: float = Field(default=0, ge=0)
    retries: int = Field(default=2, ge=0, le=5)
    request_timeout_s: float = Field(default=10, gt=0, le=120)
    rum: bool = True

    @field_validator("mix")
    @classmethod
    def _mix_positive(cls, mix: Mapping[str, float]) -> Mapping[str, float]:
        if any(share < 0 for share in mix.values()):
            raise ValueError("shares must not be negative")
        if sum(mix.values()) <= 0:
            raise ValueError("at least one share must be positive")
        return mix

    @model_validator(mode="after")
    def _one_model(self) -> Traffic:
        if (self.rate_per_s is None) == (self.users is None):
            raise ValueError("give exactly one of rate_per_s (arrival rate) or users")
        if self.ramp_s >= self.duration_s:
            raise ValueError("ramp_s must be shorter than duration_s")
        return self


# -------------------------------------------------------------- steady state


class MetricProbe(_Model):
    """A PromQL condition that must hold for every returned series (``none_ok``: or no series)."""

    type: Literal["metric"]
    name: str = ""
    query: str = Field(min_length=1)
    op: Op
    value: float
    none_ok: bool = True
    when: Literal["both", "before", "after"] = "both"


class NoAlertsProbe(_Model):
    """No alert is firing (optionally only at a severity, or ignoring some alert names)."""

    type: Literal["no_alerts"]
    name: str = ""
    severity: str | None = None
    ignore: tuple[str, ...] = ()
    when: Literal["both", "before", "after"] = "both"


SteadyProbe = Annotated[MetricProbe | NoAlertsProbe, Field(discriminator="type")]


class SteadyState(_Model):
    """Checked before the first fault and again after the last revert (see ``recovery``)."""

    probes: tuple[SteadyProbe, ...] = ()
    before: bool = True
    after: bool = True


# --------------------------------------------------------------------- faults


class FaultStep(_Model):
    """A fault on the timeline: injected at ``at_s``, reverted after ``duration_s``."""

    id: str = ""
    fault: str = Field(min_length=1)
    at_s: float = Field(ge=0)
    duration_s: float = Field(gt=0, le=1800)
    params: Mapping[str, ParamValue] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str) -> str:
        if value and not _ID.match(value):
            raise ValueError("id must be lowercase letters, digits, '-', '_' or '.'")
        return value


# --------------------------------------------------------------- expectations


class _Expectation(_Model):
    name: str = ""
    after: str | None = None
    within_s: float = Field(default=60, gt=0, le=1800)


class MetricExpectation(_Expectation):
    """``query op value`` holds (for any series, or all with ``every``) within the deadline;
    with ``absent`` it must never hold from the fault's injection to the end of the run
    (a must-not: e.g. an all-methods error ratio that hides one failing method)."""

    type: Literal["metric"]
    query: str = Field(min_length=1)
    op: Op
    value: float
    for_s: float = Field(default=0, ge=0, le=600)
    every: bool = False
    absent: bool = False


class AlertExpectation(_Expectation):
    """An alert reaches *firing* (and is notified), or with ``absent`` must never fire."""

    type: Literal["alert"]
    alert: str = Field(min_length=1)
    labels: Mapping[str, str] = Field(default_factory=dict)
    notification: bool = True
    absent: bool = False


class Dominant(_Model):
    """Who should own the latency of slow traces: service, and (a substring of) the span's
    name or of what the span calls.

    ``name_contains`` reads the span name, which each instrumentation chooses
    (paychaos' API names a query ``INSERT payments``; Node's pg instrumentation
    ``pg.query:INSERT postgres``). ``calls`` is stack-neutral: a substring of
    the span's name or of what it calls, per OpenTelemetry's semantic
    conventions (:data:`CALL_ATTRIBUTES`: the database table, statement or system,
    the URL or route, the peer service), so ``calls: payments`` blames the payments
    table, ``calls: postgresql`` any call to PostgreSQL (a connect names no table) and
    ``calls: /v1/charges`` the gateway's charges endpoint whatever the span is named.
    """

    service: str | None = None
    name_contains: str = ""
    calls: str = ""
    min_share: float = Field(default=0.0, ge=0, le=1)


#: Span attributes that say what a span calls (OpenTelemetry semantic conventions, current
#: and older names): what :attr:`Dominant.calls` is matched against, besides the span name.
CALL_ATTRIBUTES = (
    "db.collection.name",
    "db.sql.table",
    "db.query.text",
    "db.statement",
    "url.full",
    "http.url",
    "url.path",
    "http.target",
    "http.route",
    "db.system",
    "db.system.name",
    "peer.service",
)

#: What a failed span's error was, as a category both stacks' own error types map to
#: (:func:`paychaos.checks.trace.error_category`): ``timeout``, something did not answer
#: in time (Python's ``TimeoutError``, Node's ``ETIMEDOUT`` or pg's "timeout exceeded when
#: trying to connect", OpenTelemetry's own ``error.type`` value ``timeout``).
ErrorCategory = Literal["timeout"]


class TraceExpectation(_Expectation):
    """Spans matching the selector (at least ``min_spans``) and their dominant contributor."""

    type: Literal["trace"]
    service: str | None = None
    span: str | None = None
    attributes: Mapping[str, ParamValue] = Field(default_factory=dict)
    min_duration_ms: float | None = Field(default=None, ge=0)
    max_duration_ms: float | None = Field(default=None, ge=0)
    status: Literal["unset", "ok", "error"] | None = None
    calls: str = ""
    """Only spans whose name or call attributes (:data:`CALL_ATTRIBUTES`) contain this:
    ``/v1/charges`` selects the gateway call whether it is named ``POST /v1/charges``
    (paychaos' API) or ``POST`` with the URL in ``url.full``/``http.url`` (Node's)."""
    error: ErrorCategory | None = None
    """Only failed spans whose error is of this category (implies ``status: error``)."""
    min_spans: int = Field(default=1, ge=1)
    dominant: Dominant | None = None
    max_traces: int = Field(default=20, ge=1, le=200)

    @model_validator(mode="after")
    def _error_is_a_failure(self) -> TraceExpectation:
        if self.error is not None and self.status not in (None, "error"):
            raise ValueError(f"error: {self.error} selects failed spans, not status: {self.status}")
        return self


class LogExpectation(_Expectation):
    """Log records appear; with ``correlated`` each counted one has an existing trace."""

    type: Literal["log"]
    level: Literal["trace", "debug", "info", "warn", "error", "fatal"] | None = None
    service: str | None = None
    body_contains: str | None = None
    attributes: Mapping[str, ParamValue] = Field(default_factory=dict)
    min_count: int = Field(default=1, ge=1)
    correlated: bool = True


class RumExpectation(_Expectation):
    """Faro events, exceptions, measurements or logs from the browser appear."""

    type: Literal["rum"]
    kind: Literal["event", "exception", "measurement", "log"]
    rum_name: str | None = None
    attributes: Mapping[str, ParamValue] = Field(default_factory=dict)
    min_count: int = Field(default=1, ge=1)


class LedgerExpectation(_Expectation):
    """Client ledger, API database and gateway ledger agree at the end of the run."""

    type: Literal["ledger"]
    max_lost: int = Field(default=0, ge=0)
    max_double_charges: int = Field(default=0, ge=0)
    settle_s: float = Field(default=45, ge=0, le=600)


class HygieneExpectation(_Expectation):
    """No card number (Luhn-valid 13-19 digits) in the run's logs, spans or RUM."""

    type: Literal["hygiene"]
    signals: tuple[Literal["logs", "spans", "rum"], ...] = ("logs", "spans", "rum")


class CulpritExpectation(_Expectation):
    """The telemetry names who is behind the declined checkouts: the customer carrying at
    least ``min_share`` of them (and at least ``min_count``) since the fault, read from an
    attribute of the checkout spans (``signal: traces``, attribute ``customer.id``) or of
    the ``payment declined`` logs (``signal: logs``, attribute ``customer_id``), must be the
    customer the fault step ``after`` injected (a ``card-testing`` step's ``customer_id``)."""

    type: Literal["culprit"]
    signal: Literal["traces", "logs"] = "traces"
    attribute: str | None = Field(default=None, min_length=1, max_length=100)
    """Default: ``customer.id`` on spans, ``customer_id`` on logs."""
    min_share: float = Field(default=0.5, gt=0, le=1)
    min_count: int = Field(default=10, ge=1, le=1000)


Expectation = Annotated[
    MetricExpectation
    | AlertExpectation
    | TraceExpectation
    | LogExpectation
    | RumExpectation
    | LedgerExpectation
    | HygieneExpectation
    | CulpritExpectation,
    Field(discriminator="type"),
]


# --------------------------------------------------------------- guards (stop conditions)


class _Guard(_Model):
    name: str = ""


class ErrorRatioGuard(_Guard):
    """Abort when the share of checkouts failing (5xx, transport errors), as the shoppers
    see them over the last seconds, exceeds ``max_ratio`` (with at least ``min_requests``)."""

    type: Literal["error_ratio"]
    max_ratio: float = Field(gt=0, le=1)
    min_requests: int = Field(default=20, ge=1, le=100_000)


class MetricGuard(_Guard):
    """Abort when ``query op value`` holds for any series (PromQL on the target's Prometheus)."""

    type: Literal["metric"]
    query: str = Field(min_length=1)
    op: Op
    value: float


class AlertGuard(_Guard):
    """Abort when this alert fires (with these labels, if given)."""

    type: Literal["alert"]
    alert: str = Field(min_length=1)
    labels: Mapping[str, str] = Field(default_factory=dict)


Guard = Annotated[ErrorRatioGuard | MetricGuard | AlertGuard, Field(discriminator="type")]


class Recovery(_Model):
    """After the last revert, the steady state must hold again within ``within_s``."""

    within_s: float = Field(default=60, gt=0, le=1800)


class Scenario(_Model):
    """One experiment, validated before anything touches a system."""

    name: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    failure_mode: str = Field(default="", max_length=60)
    """A short human label for the way checkout breaks ("database slow"): the scenario's
    row in the fault-by-signal matrix (default: the name)."""
    traffic: Traffic
    steady_state: SteadyState = Field(default_factory=SteadyState)
    faults: tuple[FaultStep, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    recovery: Recovery = Field(default_factory=Recovery)
    rollback: Literal["always", "never"] = "always"
    settle_s: float = Field(default=10, ge=0, le=600)
    tags: tuple[str, ...] = ()
    guards: tuple[Guard, ...] = ()
    """Stop conditions: when one trips, every fault is reverted at once and the run
    is recorded as aborted by it (AWS FIS stop conditions, Chaos Toolkit safeguards)."""

    def step_id(self, index: int) -> str:
        """The id of fault step ``index`` (``<fault>-<index>`` when not given)."""
        step = self.faults[index]
        return step.id or f"{step.fault}-{index}"

    def guard_name(self, index: int) -> str:
        guard = self.guards[index]
        if guard.name:
            return guard.name
        if isinstance(guard, ErrorRatioGuard):
            return f"error ratio > {guard.max_ratio:g}"
        if isinstance(guard, AlertGuard):
            return f"alert {guard.alert}"
        return f"{guard.query} {guard.op} {guard.value:g}"

    def expectation_name(self, index: int) -> str:
        exp = self.expectations[index]
        if exp.name:
            return exp.name
        what = {
            "metric": lambda: (
                ("never " if getattr(exp, "absent", False) else "") + getattr(exp, "query", "")
            ),
            "alert": lambda: (
                ("no " if getattr(exp, "absent", False) else "") + getattr(exp, "alert", "")
            ),
        }.get(exp.type, lambda: exp.type)()
        return f"{exp.type}[{index}] {what}".strip()


def cross_check(scenario: Scenario) -> list[tuple[tuple[str | int, ...], str]]:
    """Rules that span several fields, as ``(field path, message)`` pairs (empty: fine)."""
    errors: list[tuple[tuple[str | int, ...], str]] = []
    seen: set[str] = set()
    for index, step in enumerate(scenario.faults):
        if step.id and step.id in seen:
            errors.append((("faults", index, "id"), f"duplicate fault id {step.id!r}"))
        seen.add(step.id)
        end_s = step.at_s + step.duration_s
        if end_s > scenario.traffic.duration_s:
            errors.append(
                (
                    ("faults", index, "duration_s"),
                    f"the fault ends at {end_s:g} s, after the traffic stops "
                    f"({scenario.traffic.duration_s:g} s)",
                )
            )
    known = {scenario.step_id(i) for i in range(len(scenario.faults))}
    for index, exp in enumerate(scenario.expectations):
        if exp.after is not None and exp.after not in known:
            choices = ", ".join(sorted(known)) or "none: the scenario has no faults"
            errors.append(
                (("expectations", index, "after"), f"no fault step {exp.after!r} ({choices})")
            )
        if isinstance(exp, CulpritExpectation):
            named = exp.after or (scenario.step_id(0) if scenario.faults else None)
            steps = {scenario.step_id(i): f.fault for i, f in enumerate(scenario.faults)}
            if named is None or steps.get(named, CARD_TESTING_FAULT) != CARD_TESTING_FAULT:
                errors.append(
                    (
                        ("expectations", index, "after"),
                        "a culprit expectation names the card-testing step whose customer "
                        f"it looks for; {named!r} is not one"
                        if named
                        else "a culprit expectation needs a card-testing fault step",
                    )
                )
    return errors
