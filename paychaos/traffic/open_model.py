"""The open model: checkouts arrive on a schedule, whatever the stack's latency.

In Locust's closed model N users wait for their answer before the next
request, so a slow stack silently lowers the load (coordinated omission).
Here arrivals follow a Poisson process at ``rate x level(t)`` per second;
a pool of shopper slots (greenlets) claims the next arrival time, sleeps
until it and runs the checkout. When responses slow, more slots are busy at
once but arrivals keep their schedule; an arrival no slot could start
within ``max_lateness_s`` is skipped and counted::

    schedule = ArrivalSchedule(rate_per_s=20, profile=lambda t: 1.0)
    arrival = schedule.claim()          # monotonic time it is due
    lateness_s = time.monotonic() - arrival.due
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True)
class Arrival:
    index: int
    due: float


@dataclass
class OpenModelStats:
    """Counters of one process, mergeable across workers (plain sums)."""

    scheduled: int = 0
    started: int = 0
    late: int = 0
    skipped: int = 0
    target: float = 0.0
    elapsed_s: float = 0.0

    def merge(self, other: dict[str, float]) -> None:
        self.scheduled += int(other.get("scheduled", 0))
        self.started += int(other.get("started", 0))
        self.late += int(other.get("late", 0))
        self.skipped += int(other.get("skipped", 0))
        self.target += float(other.get("target", 0.0))
        self.elapsed_s = max(self.elapsed_s, float(other.get("elapsed_s", 0.0)))

    @property
    def achieved_per_s(self) -> float:
        return self.started / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def target_per_s(self) -> float:
        return self.target / self.elapsed_s if self.elapsed_s else 0.0


class ArrivalSchedule:
    """A shared Poisson arrival schedule (one per process; not thread-safe, greenlet-safe)."""

    LATE_AFTER_S = 0.1

    def __init__(
        self,
        rate_per_s: float,
        profile: Callable[[float], float] = lambda t: 1.0,
        *,
        rng: random.Random | None = None,
        clock: Clock = time.monotonic,
        max_lateness_s: float = 5.0,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate_per_s must be > 0, got {rate_per_s}")
        self.rate_per_s = rate_per_s
        self.profile = profile
        self.rng = rng or random.Random()
        self.clock = clock
        self.max_lateness_s = max_lateness_s
        self.start = clock()
        self._next_due = self.start
        self._count = 0
        self.stats = OpenModelStats()

    def _rate(self, t: float) -> float:
        return max(0.0, self.rate_per_s * self.profile(t - self.start))

    def claim(self) -> Arrival:
        """The next arrival (its due time may be in the past: the slot is late)."""
        due = self._next_due
        rate = self._rate(due)
        # thinning-free approximation: the gap uses the rate at the previous arrival
        gap = self.rng.expovariate(rate) if rate > 0 else 1.0
        self._next_due = due + gap
        self._count += 1
        self.stats.scheduled += 1
        return Arrival(self._count, due)

    def started(self, arrival: Arrival, now: float) -> bool:
        """Record that a slot starts ``arrival`` at ``now``; False when it is too late (skipped)."""
        lateness = now - arrival.due
        if lateness > self.max_lateness_s:
            self.stats.skipped += 1
            return False
        if lateness > self.LATE_AFTER_S:
            self.stats.late += 1
        self.stats.started += 1
        return True

    def snapshot(self) -> dict[str, float]:
        """Counters so far and the target arrivals of the elapsed time (integral of the rate)."""
        now = self.clock()
        elapsed = max(0.0, now - self.start)
        steps = max(1, int(elapsed))
        width = elapsed / steps
        target = sum(self._rate(self.start + (i + 0.5) * width) * width for i in range(steps))
        s = self.stats
        return {
            "scheduled": s.scheduled,
            "started": s.started,
            "late": s.late,
            "skipped": s.skipped,
            "target": target,
            "elapsed_s": elapsed,
        }
