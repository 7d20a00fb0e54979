"""Load shapes as pure functions of time: ``level(t_s) -> float`` (1.0 = peak).

No Locust import here (importing Locust monkey-patches with gevent).

A shape says *how much* of the peak load runs at each second; the model says
what the peak is. In the closed model the peak is Locust's ``-u`` users
(:class:`paychaos.traffic.shapes.ShapedLoad` drives Locust's ``LoadTestShape.tick()``); in the open
model it is ``--arrival-rate`` checkouts per second (the arrival schedule
multiplies its rate by the level). One shape language, two models::

    level = make_profile("flash-sale", {"at_s": 60, "hold_s": 30})
    level(0)    # 0.2  (normal traffic)
    level(65)   # 1.0  (Black Friday)

Shapes and their parameters (``--shape-params NAME=NUMBER,...``):

==========  ====================================================================
steady      constant peak
ramp        ``from`` (0.1) to 1 over ``ramp_s`` (60), then hold
diurnal     a compressed day: ``low`` (0.2) at night, 1 at noon, ``period_s`` (600)
flash-sale  ``base`` (0.2), spike to 1 at ``at_s`` (60) in ``rise_s`` (5),
            hold ``hold_s`` (60), back to base in ``decay_s`` (30)
step        ``steps`` (5) equal steps of ``step_s`` (30) each: find the knee
==========  ====================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from paychaos.contracts.errors import InvalidInput

Profile = Callable[[float], float]

DEFAULTS: dict[str, dict[str, float]] = {
    "none": {},
    "steady": {},
    "ramp": {"from": 0.1, "ramp_s": 60.0},
    "diurnal": {"low": 0.2, "period_s": 600.0},
    "flash-sale": {"base": 0.2, "at_s": 60.0, "rise_s": 5.0, "hold_s": 60.0, "decay_s": 30.0},
    "step": {"steps": 5.0, "step_s": 30.0},
}


def validate_shape(name: str, params: Mapping[str, float]) -> dict[str, float]:
    """The shape's full parameters, or :class:`InvalidInput` naming the bad one."""
    if name not in DEFAULTS:
        raise InvalidInput(f"--shape: unknown shape {name!r}; one of {', '.join(DEFAULTS)}")
    unknown = set(params) - set(DEFAULTS[name])
    if unknown:
        allowed = ", ".join(DEFAULTS[name]) or "none"
        raise InvalidInput(
            f"--shape-params: {sorted(unknown)[0]!r} is not a parameter of shape {name} "
            f"(allowed: {allowed})"
        )
    merged = {**DEFAULTS[name], **params}
    for key, value in merged.items():
        if value < 0:
            raise InvalidInput(f"--shape-params: {key} must be >= 0, got {value}")
    for key in ("from", "low", "base"):
        if key in merged and merged[key] > 1:
            raise InvalidInput(
                f"--shape-params: {key} is a share of the peak (0-1), got {merged[key]}"
            )
    for key in ("period_s", "step_s", "steps"):
        if key in merged and merged[key] <= 0:
            raise InvalidInput(f"--shape-params: {key} must be > 0, got {merged[key]}")
    return merged


def make_profile(name: str, params: Mapping[str, float] | None = None) -> Profile:
    """The level function of a shape (validated)."""
    p = validate_shape(name, params or {})
    if name in ("none", "steady"):
        return lambda t: 1.0
    if name == "ramp":
        start, ramp_s = p["from"], p["ramp_s"]
        return lambda t: 1.0 if ramp_s <= 0 else start + (1 - start) * min(1.0, t / ramp_s)
    if name == "diurnal":
        low, period = p["low"], p["period_s"]
        # t=0 is midnight (low), t=period/2 is noon (peak)
        return lambda t: low + (1 - low) * (1 - math.cos(2 * math.pi * t / period)) / 2
    if name == "flash-sale":
        return _flash_sale(p)
    steps, step_s = p["steps"], p["step_s"]
    return lambda t: min(1.0, (math.floor(t / step_s) + 1) / steps)


def _flash_sale(p: Mapping[str, float]) -> Profile:
    base, at, rise, hold, decay = p["base"], p["at_s"], p["rise_s"], p["hold_s"], p["decay_s"]

    def level(t: float) -> float:
        if t < at:
            return base
        if t < at + rise:
            return base + (1 - base) * (t - at) / rise
        if t < at + rise + hold:
            return 1.0
        if t < at + rise + hold + decay:
            return 1 - (1 - base) * (t - at - rise - hold) / decay
        return base

    return level
