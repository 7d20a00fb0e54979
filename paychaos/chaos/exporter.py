"""``chaos_fault_active`` for the faults no target exports itself (process, memory).

The fault proxy and the gateway export ``chaos_fault_active`` for their own
faults. For process and memory faults the stack's *instance* exporter (job
``instance``) reads the chaos journal at scrape time: a fault is active while
it has no end event, its expiry is in the future, and the process that holds
it (watchdog, hog) — when it has one — is still that process. All three
survive a SIGKILLed controller, so the gauge drops to 0 on time without it.

Example::

    registry.register(FaultJournalCollector(state_dir))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paychaos.chaos import procs
from paychaos.chaos.journal import Journal, JournalEntry, journal_path

# faults whose target exports chaos_fault_active itself
_TARGET_EXPORTED_PREFIXES = ("proxy/", "gateway/")
_METRIC_FAULT = {
    "kill": "process_kill",
    "restart": "process_restart",
    "pause": "process_pause",
    "memory-pressure": "memory_pressure",
    "app-leak": "app_leak",
}


# the process that holds a fault while it is in force: (pid key, start-time key)
_HOLDERS = {"memory-pressure": ("pid", "starttime"), "pause": ("watch_pid", "watch_starttime")}


def _holder_alive(entry: JournalEntry) -> bool:
    """False once the process holding the fault (hog, watchdog) is gone."""
    keys = _HOLDERS.get(entry.fault)
    if keys is None:
        return True
    pid, ticks = entry.details.get(keys[0]), entry.details.get(keys[1])
    if isinstance(pid, int) and isinstance(ticks, int):
        return procs.same_process(pid, ticks)
    return True


def journal_active(journal: Journal, now: float | None = None) -> list[JournalEntry]:
    """Journal-exported faults in force now."""
    moment = time.time() if now is None else now
    return [
        entry
        for entry in journal.entries()
        if not entry.target.startswith(_TARGET_EXPORTED_PREFIXES)
        and entry.is_active(moment)
        and _holder_alive(entry)
    ]


def active_hog_pids(state_dir: Path) -> list[int]:
    """Pids of live memory hogs (counted as processes of the instance)."""
    return [
        int(entry.details["pid"])
        for entry in journal_active(Journal(journal_path(state_dir)))
        if entry.fault == "memory-pressure" and isinstance(entry.details.get("pid"), int)
    ]


class FaultJournalCollector(Collector):
    """Exports ``chaos_fault_active{fault,target}`` from the chaos journal."""

    def __init__(self, state_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._journal = Journal(journal_path(state_dir))
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "chaos_fault_active",
            "1 while a fault of this type is injected into the target (from the chaos journal)",
            labels=["fault", "target"],
        )
        now = self._clock()
        active = {(e.fault, e.target) for e in journal_active(self._journal, now)}
        seen = {
            (e.fault, e.target)
            for e in self._journal.entries()
            if not e.target.startswith(_TARGET_EXPORTED_PREFIXES)
        }
        for fault, target in sorted(seen):
            value = 1.0 if (fault, target) in active else 0.0
            gauge.add_metric([_METRIC_FAULT.get(fault, fault), target], value)
        yield gauge
