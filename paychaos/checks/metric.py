"""Metric checks: a PromQL condition holds (optionally for a while), and steady-state probes.

Example::

    check = MetricCheck('sum(rate(shop_db_errors_total[1m]))', ">", 0, for_s=5)
    check.observe(ctx, Window(since_unix_s=t0))   # polled by the runner
"""

from __future__ import annotations

from typing import ClassVar

from paychaos.contracts.errors import StackError
from paychaos.contracts.expectations import CheckContext, CheckMode, Observation, Window
from paychaos.contracts.metrics import MetricsSource
from paychaos.contracts.scenario import MetricProbe, NoAlertsProbe, Op, compare


def _unit(query: str) -> str:
    """What a query's values are: ``seconds``, ``ratio`` or a plain ``number``."""
    if "/" in query and "histogram_quantile" not in query:
        return "ratio"
    counted = ("_seconds_count", "changes(", "resets(", "count(", "count_over_time(")
    if any(word in query for word in counted):
        return "number"  # how many observations, changes or series: not a duration
    if "_seconds" in query:
        return "seconds"
    return "number"


def show_value(query: str, value: float) -> str:
    """``0.287857`` → ``288 ms`` (a duration), ``3.9 %`` (a ratio), ``12`` (a count)."""
    if value != value:
        return "NaN"
    unit = _unit(query)
    if unit == "seconds":
        return f"{value * 1000:.0f} ms" if abs(value) < 10 else f"{value:.1f} s"
    if unit == "ratio":
        return f"{value * 100:.1f} %" if 0 <= value <= 1 else f"{value:.3g}"
    return f"{value:.4g}"


def _labels(labels: object) -> str:
    pairs = dict(labels) if isinstance(labels, dict) else {}
    if not pairs:
        return "(one series, no labels)"
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(pairs.items())) + "}"


def _show(query: str, labels: object, value: float) -> str:
    return f"{show_value(query, value)} for {_labels(labels)}"


class MetricCheck:
    """``query op value`` for any returned series (every series with ``every``).

    With ``for_s`` the condition must hold on consecutive polls for that long;
    the signal time is when it has held that long (as an alert rule's ``for``). With
    ``absent`` the check is a must-not (mode ``never``): the condition holding is what
    fails it.
    """

    needs: ClassVar[tuple[str, ...]] = ("metrics",)
    """The capabilities this expectation type always reads."""

    def __init__(
        self,
        query: str,
        op: Op,
        value: float,
        *,
        for_s: float = 0,
        every: bool = False,
        absent: bool = False,
    ):
        self.query, self.op, self.value, self.for_s, self.every = query, op, value, for_s, every
        self.mode: CheckMode = "never" if absent else "eventually"
        self.requires = [*self.needs]
        self.description = (
            ("never: " if absent else "")
            + f"{query} {op} {value:g}"
            + (f" for {for_s:g}s" if for_s else "")
        )
        self._holding_since: float | None = None

    def _holds(self, ctx: CheckContext) -> tuple[bool, str]:
        try:
            samples = ctx.metrics.query(self.query)
        except StackError as exc:
            return False, f"query failed: {exc}"
        if not samples:
            return False, "no series"
        results = [compare(s.value, self.op, self.value) for s in samples]
        ok = all(results) if self.every else any(results)
        shown = "; ".join(_show(self.query, s.labels, s.value) for s in samples[:4])
        return ok, shown

    def observe(self, ctx: CheckContext, window: Window) -> Observation:
        ok, shown = self._holds(ctx)
        now = ctx.clock()
        if not ok:
            self._holding_since = None
            return Observation(
                False, ("does not hold: " if self.mode == "never" else "not yet: ") + shown
            )
        if self._holding_since is None:
            self._holding_since = now
        if now - self._holding_since + 1e-9 >= self.for_s:
            return Observation(True, f"holds: {shown}", now)
        return Observation(False, f"holding for {now - self._holding_since:.0f}s: {shown}")


def probe_metric(metrics: MetricsSource, probe: MetricProbe) -> tuple[bool, str]:
    """A steady-state metric probe: every series satisfies the condition."""
    try:
        samples = metrics.query(probe.query)
    except StackError as exc:
        return False, f"{probe.query}: query failed: {exc}"
    if not samples:
        return probe.none_ok, f"{probe.query}: no series"
    bad = [s for s in samples if not compare(s.value, probe.op, probe.value)]
    shown = "; ".join(_show(probe.query, s.labels, s.value) for s in (bad or samples)[:4])
    wanted = f"{probe.op} {show_value(probe.query, probe.value)}"
    return not bad, f"{shown} (wanted {wanted}; {probe.query})"


def probe_no_alerts(metrics: MetricsSource, probe: NoAlertsProbe) -> tuple[bool, str]:
    """A steady-state alert probe: nothing firing (but the ignored names)."""
    try:
        alerts = metrics.alerts()
    except StackError as exc:
        return False, f"alerts query failed: {exc}"
    firing = [
        a
        for a in alerts
        if a.firing
        and a.name not in probe.ignore
        and (probe.severity is None or a.labels.get("severity") == probe.severity)
    ]
    if not firing:
        return True, "no alerts firing"
    names = ", ".join(
        f"{a.name}{{{','.join(f'{k}={v}' for k, v in sorted(a.labels.items()) if k != 'alertname')}}}"
        for a in firing[:4]
    )
    return False, f"firing: {names}"
