"""Locust's side of the load shapes: :class:`ShapedLoad` turns a profile into ``tick()``.

The shapes themselves (steady, ramp, diurnal, flash-sale, step) are pure
functions in :mod:`paychaos.traffic.profiles`.
"""

from __future__ import annotations

from typing import Any

from locust import LoadTestShape

from paychaos.traffic.profiles import Profile


class ShapedLoad(LoadTestShape):
    """Closed model: users = round(level(t) x ``-u``), spawned at ``-r``; stops at ``--run-time``.

    Not picked up from a locustfile by itself (``abstract``): the traffic
    plugin installs an instance as ``environment.shape_class`` when ``--shape``
    or ``--arrival-rate`` is given.
    """

    abstract = True
    use_common_options = True

    def __init__(self, profile: Profile, peak_users: int, spawn_rate: float) -> None:
        super().__init__()
        self.profile = profile
        self.peak_users = peak_users
        self.spawn_rate = spawn_rate

    def tick(self) -> tuple[int, float] | None:
        run_time = self.get_run_time()
        limit = self._run_time_limit()
        if limit is not None and run_time >= limit:
            return None
        users = max(1, round(self.profile(run_time) * self.peak_users))
        return users, self.spawn_rate

    def _run_time_limit(self) -> float | None:
        runner: Any = self.runner
        options = runner.environment.parsed_options if runner is not None else None
        value = getattr(options, "run_time", None)
        return float(value) if value else None
