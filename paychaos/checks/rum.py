"""RUM checks: Faro events, exceptions, measurements or logs from the browser appear.

Example::

    RumCheck(RumQuery(kind="exception", name="PaymentError"), min_count=3)
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from paychaos.contracts.errors import StackError
from paychaos.contracts.expectations import CheckContext, CheckMode, Observation, Window
from paychaos.contracts.signals import RumQuery


class RumCheck:
    """At least ``min_count`` RUM items match in the window."""

    needs: ClassVar[tuple[str, ...]] = ("rum",)
    """The capabilities this expectation type always reads."""

    mode: CheckMode = "eventually"

    def __init__(self, query: RumQuery, *, min_count: int = 1) -> None:
        self.query, self.min_count = query, min_count
        self.requires = [*self.needs]
        self.description = f"RUM {query.kind or 'item'} {query.name or '(any)'}" + (
            f" x{min_count}" if min_count > 1 else ""
        )

    def observe(self, ctx: CheckContext, window: Window) -> Observation:
        query = replace(
            self.query,
            since_unix_s=window.since_unix_s,
            until_unix_s=window.until_unix_s,
            limit=max(self.min_count, 1),
        )
        try:
            items = ctx.rum.find_rum(query)
        except StackError as exc:
            return Observation(False, f"cannot query RUM: {exc}")
        ok = len(items) >= self.min_count
        return Observation(ok, f"{len(items)} matching RUM item(s)", ctx.clock() if ok else None)
