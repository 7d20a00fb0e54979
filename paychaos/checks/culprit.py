"""Culprit checks: the telemetry names who is behind the declined checkouts.

The seed's question: *which specific user caused that spike when trying to
pay?* Metrics cannot say (a per-customer label would explode them); spans and
logs can, because the customer id travels on them as an attribute. Since the
fault, the check counts the declined checkouts by that attribute, takes the
customer carrying the most, and compares it with the customer the fault
injected (``ctx.injected[step]["customer_id"]``, recorded by the runner)::

    culprit: customer cus_3f9a0c11d2, 84 of 97 declined checkouts

It holds when that customer is the injected one, carries at least
``min_share`` of the declined checkouts and at least ``min_count`` of them.
Declined checkouts without the attribute count in the total (so telemetry that
drops it cannot pass), and a wrong customer is named in the detail.

Example::

    CulpritCheck(step="card-tester", signal="traces", min_share=0.5, min_count=10)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import ClassVar, Literal

from paychaos.contracts.domain import CUSTOMER_LOG_ATTRIBUTE, CUSTOMER_SPAN_ATTRIBUTE
from paychaos.contracts.errors import StackError
from paychaos.contracts.expectations import CheckContext, CheckMode, Observation, Window
from paychaos.contracts.signals import AttributeValue, LogQuery, SpanQuery, attribute_text

#: How the checkout says it was declined: the API's span attribute and log message.
DECLINED_SPAN = {"payment.status": "declined"}
DECLINED_LOG = "payment declined"
#: At most this many declined checkouts are read per poll (the newest).
MAX_RECORDS = 5000


class CulpritCheck:
    """The customer dominating the declined checkouts is the injected one."""

    needs: ClassVar[tuple[str, ...]] = ("traces",)
    """The capabilities this expectation type always reads (``logs`` with ``signal: logs``)."""

    mode: CheckMode = "eventually"

    def __init__(
        self,
        *,
        step: str | None,
        signal: Literal["traces", "logs"] = "traces",
        attribute: str | None = None,
        min_share: float = 0.5,
        min_count: int = 10,
    ) -> None:
        self.step, self.signal = step, signal
        self.attribute = attribute or (
            CUSTOMER_SPAN_ATTRIBUTE if signal == "traces" else CUSTOMER_LOG_ATTRIBUTE
        )
        self.min_share, self.min_count = min_share, min_count
        self.requires: list[str] = [signal]
        self.description = (
            f"the customer on {min_share:.0%}+ of declined checkouts ({signal}, "
            f"attribute {self.attribute}) is the one injected"
        )

    def _truth(self, ctx: CheckContext) -> str | None:
        facts = ctx.injected.get(self.step) if self.step else None
        if facts is None:
            found = [f for f in ctx.injected.values() if "customer_id" in f]
            facts = found[0] if len(found) == 1 else None
        return facts.get("customer_id") if facts else None

    def _declined(self, ctx: CheckContext, window: Window) -> Sequence[AttributeValue]:
        if self.signal == "traces":
            spans = ctx.traces.find_spans(
                SpanQuery(
                    attributes=DECLINED_SPAN,
                    since_unix_s=window.since_unix_s,
                    until_unix_s=window.until_unix_s,
                    limit=MAX_RECORDS,
                )
            )
            return [s.attributes.get(self.attribute) for s in spans]
        records = ctx.logs.find_logs(
            LogQuery(
                body_contains=DECLINED_LOG,
                since_unix_s=window.since_unix_s,
                until_unix_s=window.until_unix_s,
                limit=MAX_RECORDS,
            )
        )
        return [r.attributes.get(self.attribute) for r in records]

    def tally(self, ctx: CheckContext, window: Window) -> str:
        """The count over the whole window once the run is over (the detection's detail
        is the count when it was first named), for the report."""
        try:
            values = self._declined(ctx, window)
        except StackError as exc:
            return f"cannot query {self.signal}: {exc}"
        named = Counter(attribute_text(v) for v in values if v not in (None, ""))
        if not named:
            return f"none of {len(values)} declined checkout(s) carries {self.attribute}"
        top, count = named.most_common(1)[0]
        return f"customer {top}, {count} of {len(values)} declined checkouts"

    def observe(self, ctx: CheckContext, window: Window) -> Observation:
        try:
            values = self._declined(ctx, window)
        except StackError as exc:
            return Observation(False, f"cannot query {self.signal}: {exc}")
        total = len(values)
        named = Counter(attribute_text(v) for v in values if v not in (None, ""))
        truth = self._truth(ctx)
        if not named:
            return Observation(
                False,
                f"no culprit: none of {total} declined checkout(s) carries {self.attribute}",
            )
        top, count = named.most_common(1)[0]
        detail = f"culprit: customer {top}, {count} of {total} declined checkouts"
        if truth is None:
            return Observation(False, f"{detail}; the run recorded no injected customer")
        if top != truth:
            return Observation(False, f"{detail}; wrong customer: the run injected {truth}")
        if count < self.min_count or count < self.min_share * total:
            return Observation(
                False,
                f"{detail} (need {self.min_count}+ and {self.min_share:.0%}+ of them)",
            )
        return Observation(True, f"{detail} (the injected customer)", ctx.clock())
