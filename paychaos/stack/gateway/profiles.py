"""Per-method latency and decline model of the simulated processors.

Each payment method (``visa``, ``amex``, ``paypal``, ``crypto``) has a
:class:`MethodProfile`: a log-normal latency (median and sigma, capped) and a
decline rate with the decline codes it draws from. A :class:`Sampler` draws
from them with its own seedable ``random.Random``.

Example::

    sampler = Sampler(DEFAULT_PROFILES, seed=7, latency_scale=1.0)
    sampler.latency_s("crypto")        # e.g. 0.41
    sampler.decline_code("visa")       # None (approved) or e.g. "do_not_honor"

A YAML file given with ``--profiles`` overrides fields per method::

    crypto:
      latency_median_ms: 900
      decline_rate: 0.1
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from paychaos.contracts.errors import InvalidInput
from paychaos.contracts.messages import validation_message

METHODS: tuple[str, ...] = ("visa", "amex", "paypal", "crypto")
CARD_METHODS = frozenset({"visa", "amex"})


@dataclass(frozen=True, slots=True)
class MethodProfile:
    """How one processor behaves when nothing is broken."""

    latency_median_ms: float
    latency_sigma: float
    latency_cap_ms: float
    decline_rate: float
    decline_codes: tuple[str, ...]


_CARD_CODES = ("insufficient_funds", "do_not_honor", "expired_card", "incorrect_cvc")

DEFAULT_PROFILES: Mapping[str, MethodProfile] = {
    "visa": MethodProfile(60.0, 0.35, 10_000.0, 0.03, _CARD_CODES),
    "amex": MethodProfile(90.0, 0.35, 10_000.0, 0.04, _CARD_CODES),
    "paypal": MethodProfile(
        180.0, 0.45, 10_000.0, 0.02, ("instrument_declined", "insufficient_funds")
    ),
    "crypto": MethodProfile(
        400.0, 0.9, 10_000.0, 0.05, ("insufficient_funds", "transaction_rejected")
    ),
}


class _ProfileOverride(BaseModel):
    """One method's entry in a profiles YAML file; every field optional."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    latency_median_ms: float | None = Field(default=None, ge=0, le=600_000)
    latency_sigma: float | None = Field(default=None, ge=0, le=5)
    latency_cap_ms: float | None = Field(default=None, ge=0, le=600_000)
    decline_rate: float | None = Field(default=None, ge=0, le=1)
    decline_codes: tuple[str, ...] | None = Field(default=None, min_length=1)


def _format_validation_error(prefix: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in (prefix, *first["loc"]) if part != "")
    return f"{where}: {validation_message(first)}"


def parse_profiles(
    raw: Any, *, base: Mapping[str, MethodProfile] = DEFAULT_PROFILES, source: str = "profiles"
) -> dict[str, MethodProfile]:
    """Merge a mapping ``{method: {field: value}}`` onto ``base``.

    Raises :class:`InvalidInput` naming the offending key, e.g.
    ``profiles.yaml: crypto.latency_sigma: Input should be less than or equal to 5``.
    """
    if raw is None:
        return dict(base)
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{source}: the top level must be a mapping of method -> fields")
    merged = dict(base)
    for method, fields in raw.items():
        if method not in base:
            known = ", ".join(sorted(base))
            raise InvalidInput(f"{source}: unknown method {method!r} (known: {known})")
        if fields is None:
            continue
        if not isinstance(fields, Mapping):
            raise InvalidInput(f"{source}: {method}: must be a mapping of fields")
        try:
            override = _ProfileOverride.model_validate(
                {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
            )
        except ValidationError as exc:
            raise InvalidInput(f"{source}: {_format_validation_error(str(method), exc)}") from None
        changes = override.model_dump(exclude_none=True)
        merged[method] = replace(merged[method], **changes)
    return merged


def load_profiles(path: str | Path) -> dict[str, MethodProfile]:
    """Read a profiles YAML file and merge it onto :data:`DEFAULT_PROFILES`."""
    import yaml

    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"{source}: cannot read profiles file: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source}: not valid YAML: {exc}") from exc
    return parse_profiles(raw, source=source)


class Sampler:
    """Draws latencies and declines from the profiles with one seedable RNG.

    ``latency_scale`` multiplies every profile latency (0 makes the processors
    instant, for benchmarks). Latency injected by an admin behaviour is added
    by the caller and is not scaled.
    """

    def __init__(
        self,
        profiles: Mapping[str, MethodProfile],
        *,
        seed: int | None = None,
        latency_scale: float = 1.0,
    ) -> None:
        if latency_scale < 0 or not math.isfinite(latency_scale):
            raise InvalidInput(f"latency scale must be a finite number >= 0, got {latency_scale}")
        self.profiles = dict(profiles)
        self.latency_scale = latency_scale
        self._rng = random.Random(seed)
        # Precompute per method: (mu of the underlying normal, sigma, cap in s).
        self._latency = {
            name: (
                math.log(max(p.latency_median_ms, 1e-9) / 1000.0),
                p.latency_sigma,
                p.latency_cap_ms / 1000.0,
            )
            for name, p in self.profiles.items()
        }

    def latency_s(self, method: str) -> float:
        """One processor latency in seconds (capped, then scaled)."""
        if self.latency_scale == 0.0:
            return 0.0
        mu, sigma, cap_s = self._latency[method]
        value = self._rng.lognormvariate(mu, sigma) if sigma > 0 else math.exp(mu)
        return min(value, cap_s) * self.latency_scale

    def decline_code(self, method: str, rate_override: float | None = None) -> str | None:
        """``None`` when approved, else a decline code drawn from the profile."""
        profile = self.profiles[method]
        rate = profile.decline_rate if rate_override is None else rate_override
        if rate <= 0.0 or self._rng.random() >= rate:
            return None
        return self._rng.choice(profile.decline_codes)

    def uniform(self, low: float, high: float) -> float:
        """A uniform draw from the same seeded stream (used for jitter)."""
        return self._rng.uniform(low, high)

    def chance(self, rate: float) -> bool:
        """True with probability ``rate`` (0 and 1 never consume a draw)."""
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        return self._rng.random() < rate
