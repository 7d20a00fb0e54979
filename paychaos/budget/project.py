"""Projection: what a store of N checkouts a day sends, against a free tier.

Pure arithmetic on measured rates (:class:`Rates`), so it can be checked by hand:

- **metrics**: the series the store ships do not grow with its traffic (a label
  set is bounded: 4 methods x 3 statuses), so they are a constant. Grafana Cloud
  bills on data points per minute when a series sends more than the included DPM
  (1 DPM: a sample a minute), so the *billable* series are
  ``series x max(1, DPM per series / included DPM)``;
- **logs, traces**: bytes per checkout x N x days per month, against GB/month
  (frontend events count as logs when the tier says so: Faro reaches Loki);
- **a cardinality explosion** (:class:`Explosion`): one metric gains a label with
  K distinct values a day. Assumed: each value shows up with ``series_per_value``
  of the metric's series (1: a customer pays with one method and gets one outcome),
  and every series stays active until the app restarts, once a day (the Prometheus
  client exports a series from its first use until the process ends). So the
  metric's S series become ``max(S, K x series_per_value)``. K is either fixed, or
  proportional to the store (``per checkout``: a per-customer label when customers
  rarely come back the same day, a per-order label).

The largest store that fits is the smallest of the per-limit maxima; the limit
that gives it is the first one hit as the store grows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from paychaos.budget.limits import FreeTier
from paychaos.contracts.errors import InvalidInput

LIMITS = ("series", "logs", "traces")
#: The explosion projected by default: a per-customer label on the seed's counter.
DEFAULT_EXPLOSION = "shop_payments_total:1/checkout"


@dataclass(frozen=True)
class Explosion:
    """``metric`` gains a label with K distinct values per day (fixed, or per checkout)."""

    metric: str
    values_per_day: float | None = None
    values_per_checkout: float | None = None
    series_per_value: float = 1.0

    def __post_init__(self) -> None:
        if (self.values_per_day is None) == (self.values_per_checkout is None):
            raise ValueError("an explosion has values per day or per checkout, one of them")
        if self.series_per_value <= 0:
            raise ValueError("series_per_value must be positive")

    def values(self, checkouts_per_day: float) -> float:
        if self.values_per_day is not None:
            return self.values_per_day
        assert self.values_per_checkout is not None
        return self.values_per_checkout * checkouts_per_day

    def describe(self) -> str:
        if self.values_per_checkout is not None:
            how = (
                "one new value per checkout"
                if self.values_per_checkout == 1
                else f"{self.values_per_checkout:g} new values per checkout"
            )
        else:
            how = f"{self.values_per_day:,.0f} distinct values a day"
        return (
            f"{self.metric} gains a label with {how} (e.g. a per-customer label); assumed: "
            f"each value shows up with {self.series_per_value:g} of its series, and every "
            "series stays active until the app restarts once a day"
        )


_EXPLOSION = re.compile(r"^(?P<metric>[a-zA-Z_][a-zA-Z0-9_]*)(?::(?P<k>[^:]+))?(?::(?P<s>[^:]+))?$")


def parse_explosion(text: str) -> Explosion:
    """``METRIC[:K[:SERIES_PER_VALUE]]``; K is ``N`` (values a day) or ``R/checkout``.

    ``shop_payments_total`` alone means one new value per checkout.
    """
    match = _EXPLOSION.match(text.strip())
    if not match:
        raise InvalidInput(
            f"--explode {text!r}: expected METRIC[:K[:SERIES_PER_VALUE]], "
            "e.g. shop_payments_total:1/checkout or shop_payments_total:5000"
        )
    k, s = match["k"] or "1/checkout", match["s"] or "1"
    try:
        per_value = float(s)
        values: tuple[float | None, float | None]
        if k.endswith("/checkout"):
            values = (None, float(k.removesuffix("/checkout")))
        else:
            values = (float(k), None)
        if any(v is not None and (not math.isfinite(v) or v < 0) for v in values):
            raise ValueError("K must be a non-negative number")
        return Explosion(
            match["metric"],
            values_per_day=values[0],
            values_per_checkout=values[1],
            series_per_value=per_value,
        )
    except ValueError as exc:
        raise InvalidInput(f"--explode {text!r}: {exc}") from None


@dataclass(frozen=True)
class Rates:
    """What one checkout costs and what the store sends regardless of its traffic.

    ``None`` for a volume that was not measured (the target has no collector).
    """

    series: float
    """Series the store ships (the jobs that go to the SaaS)."""
    metric_series: Mapping[str, float] = field(default_factory=dict)
    dpm_per_series: float = 1.0
    log_bytes_per_checkout: float | None = 0.0
    trace_bytes_per_checkout: float | None = 0.0
    rum_bytes_per_checkout: float | None = 0.0


@dataclass(frozen=True)
class Usage:
    """One limit at one store size."""

    limit: str
    used: float | None
    allowed: float
    unit: str

    @property
    def share(self) -> float | None:
        return None if self.used is None else self.used / self.allowed

    @property
    def fits(self) -> bool | None:
        return None if self.used is None else self.used <= self.allowed


@dataclass(frozen=True)
class Fit:
    """The largest store (checkouts a day) each limit allows, and the smallest of them."""

    max_by_limit: Mapping[str, float | None]
    """``inf``: no size exceeds it; 0: over the limit at any size; None: not measured."""

    @property
    def largest(self) -> float:
        known = [v for v in self.max_by_limit.values() if v is not None]
        return min(known) if known else math.inf

    @property
    def first_limit(self) -> str | None:
        """The limit hit first as the store grows (None when none ever is)."""
        known = {k: v for k, v in self.max_by_limit.items() if v is not None}
        if not known or min(known.values()) == math.inf:
            return None
        return min(known, key=lambda k: (known[k], LIMITS.index(k)))

    @property
    def unmeasured(self) -> list[str]:
        return [k for k, v in self.max_by_limit.items() if v is None]


def _dpm_factor(rates: Rates, tier: FreeTier) -> float:
    return max(1.0, rates.dpm_per_series / tier.metrics.included_dpm_per_series)


def series_at(rates: Rates, checkouts_per_day: float, explosion: Explosion | None = None) -> float:
    """Series shipped by a store of that size (constant unless a metric explodes)."""
    if explosion is None:
        return rates.series
    before = rates.metric_series.get(explosion.metric, 0.0)
    after = max(before, explosion.values(checkouts_per_day) * explosion.series_per_value)
    return rates.series - before + after


def _log_bytes(rates: Rates, tier: FreeTier) -> float | None:
    if rates.log_bytes_per_checkout is None:
        return None
    rum = (rates.rum_bytes_per_checkout or 0.0) if tier.rum_counts_as == "logs" else 0.0
    return rates.log_bytes_per_checkout + rum


def _gb_per_month(bytes_per_checkout: float | None, n: float, tier: FreeTier) -> float | None:
    if bytes_per_checkout is None:
        return None
    return bytes_per_checkout * n * tier.days_per_month / tier.gb_bytes


def usage_at(
    rates: Rates, tier: FreeTier, checkouts_per_day: float, explosion: Explosion | None = None
) -> list[Usage]:
    """Each limit's use by a store of ``checkouts_per_day``."""
    n = checkouts_per_day
    billable = series_at(rates, n, explosion) * _dpm_factor(rates, tier)
    return [
        Usage("series", billable, tier.metrics.active_series, "series"),
        Usage(
            "logs", _gb_per_month(_log_bytes(rates, tier), n, tier),
            tier.logs.gb_per_month, "GB/month",
        ),
        Usage(
            "traces", _gb_per_month(rates.trace_bytes_per_checkout, n, tier),
            tier.traces.gb_per_month, "GB/month",
        ),
    ]  # fmt: skip


def _volume_max(bytes_per_checkout: float | None, gb: float, tier: FreeTier) -> float | None:
    if bytes_per_checkout is None:
        return None
    if bytes_per_checkout <= 0:
        return math.inf
    return gb * tier.gb_bytes / (bytes_per_checkout * tier.days_per_month)


def fit(rates: Rates, tier: FreeTier, explosion: Explosion | None = None) -> Fit:
    """The largest store each limit allows (see :class:`Fit`)."""
    factor = _dpm_factor(rates, tier)
    allowed_series = tier.metrics.active_series / factor  # shipped series the tier takes
    fixed = series_at(rates, 0.0, explosion)
    if fixed > allowed_series:
        series_max = 0.0
    elif explosion is None or explosion.values_per_checkout in (None, 0):
        series_max = math.inf
    else:
        assert explosion.values_per_checkout is not None
        before = rates.metric_series.get(explosion.metric, 0.0)
        room = allowed_series - (rates.series - before)  # what the exploding metric may hold
        series_max = room / (explosion.values_per_checkout * explosion.series_per_value)
    return Fit(
        {
            "series": series_max,
            "logs": _volume_max(_log_bytes(rates, tier), tier.logs.gb_per_month, tier),
            "traces": _volume_max(rates.trace_bytes_per_checkout, tier.traces.gb_per_month, tier),
        }
    )


@dataclass(frozen=True)
class Projection:
    """Usage at several store sizes and the largest that fits, with and without an explosion."""

    tier: FreeTier
    rates: Rates
    sizes: tuple[float, ...]
    usage: Mapping[float, list[Usage]]
    fit: Fit
    explosion: Explosion | None = None
    exploded_usage: Mapping[float, list[Usage]] = field(default_factory=dict)
    exploded_fit: Fit | None = None


DEFAULT_SIZES = (100.0, 1_000.0, 10_000.0, 100_000.0)


def project(
    rates: Rates,
    tier: FreeTier,
    sizes: Sequence[float] = DEFAULT_SIZES,
    explosion: Explosion | None = None,
) -> Projection:
    """Usage at each size, and the largest store, as measured and with the explosion."""
    base = fit(rates, tier)
    exploded = fit(rates, tier, explosion) if explosion is not None else None
    return Projection(
        tier=tier,
        rates=rates,
        sizes=tuple(sizes),
        usage={n: usage_at(rates, tier, n) for n in sizes},
        fit=base,
        explosion=explosion,
        exploded_usage=(
            {n: usage_at(rates, tier, n, explosion) for n in sizes} if explosion else {}
        ),
        exploded_fit=exploded,
    )


__all__ = [
    "DEFAULT_EXPLOSION",
    "DEFAULT_SIZES",
    "Explosion",
    "Fit",
    "Projection",
    "Rates",
    "Usage",
    "fit",
    "parse_explosion",
    "project",
    "series_at",
    "usage_at",
]
