"""Hygiene check: no card number (PAN) in the run's logs, spans or RUM.

A PAN is 13-19 digits (spaces or dashes allowed between them) passing the
Luhn checksum: :func:`paychaos.stack.telemetry.contains_pan`, the same rule the
services' redaction uses. Canonical UUIDs are removed before the scan (their
all-digit groups could otherwise line up into a Luhn-valid run by chance).

Example::

    HygieneCheck(("logs", "spans")).observe(ctx, Window(run_started))
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

from paychaos.contracts.errors import StackError
from paychaos.contracts.expectations import CheckContext, CheckMode, Observation, Window
from paychaos.contracts.signals import AttributeValue, LogQuery, RumQuery, SpanQuery
from paychaos.stack.telemetry import contains_pan

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
SCAN_LIMIT = 20_000
"""Records read per signal and window (a window holds far fewer at the suite's rates)."""
SCAN_CHUNK_S = 10.0


def _texts(value: AttributeValue) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, int) and not isinstance(value, bool):
        yield str(value)


def _leaks(*parts: str | Mapping[str, AttributeValue] | None) -> bool:
    for part in parts:
        if part is None:
            continue
        texts = [part] if isinstance(part, str) else [t for v in part.values() for t in _texts(v)]
        for text in texts:
            if contains_pan(_UUID.sub("-", text)):
                return True
    return False


class HygieneCheck:
    """Holds when no scanned record contains a PAN."""

    needs: ClassVar[tuple[str, ...]] = ("logs",)
    """The capabilities this expectation type always reads."""

    mode: CheckMode = "final"

    def __init__(self, signals: Sequence[str] = ("logs", "spans", "rum")) -> None:
        self.signals = tuple(signals)
        kinds = {"logs": "logs", "spans": "traces", "rum": "rum"}
        self.requires = [kinds[s] for s in self.signals]
        self.description = f"no card number in {', '.join(self.signals)}"

    def observe(self, ctx: CheckContext, window: Window) -> Observation:
        # The scan goes window by window (SCAN_CHUNK_S each): one query for a whole
        # run's spans made a loaded collector miss the client's timeout.
        start = window.since_unix_s
        end = window.until_unix_s if window.until_unix_s is not None else ctx.clock()
        found: list[str] = []
        scanned = 0
        chunk = start
        try:
            while chunk < end:
                since, until = chunk, min(end, chunk + SCAN_CHUNK_S)
                chunk = until
                scanned += self._scan(ctx, since, until, found)
        except StackError as exc:
            return Observation(False, f"cannot scan telemetry: {exc}")
        if found:
            return Observation(
                False, f"{len(found)} record(s) with a card number, e.g. {'; '.join(found[:3])}"
            )
        return Observation(True, f"{scanned} record(s) scanned, no card number", ctx.clock())

    def _scan(self, ctx: CheckContext, since: float, until: float, found: list[str]) -> int:
        scanned = 0
        if "logs" in self.signals:
            for rec in ctx.logs.find_logs(
                LogQuery(since_unix_s=since, until_unix_s=until, limit=SCAN_LIMIT)
            ):
                scanned += 1
                if _leaks(rec.body, rec.attributes):
                    found.append(f"log from {rec.service}: {rec.body[:60]!r}")
        if "spans" in self.signals:
            for span in ctx.traces.find_spans(
                SpanQuery(since_unix_s=since, until_unix_s=until, limit=SCAN_LIMIT)
            ):
                scanned += 1
                events = [e.attributes for e in span.events]
                if _leaks(span.name, span.status_message, span.attributes, *events):
                    found.append(f"span {span.service}/{span.name} in trace {span.trace_id}")
        if "rum" in self.signals:
            for item in ctx.rum.find_rum(
                RumQuery(since_unix_s=since, until_unix_s=until, limit=SCAN_LIMIT)
            ):
                scanned += 1
                if _leaks(item.message, item.page_url, item.attributes):
                    found.append(f"RUM {item.kind} {item.name}")
        return scanned
