"""The free tier a budget is projected against: a YAML file the user can edit.

The default, :data:`DEFAULT_LIMITS` (``grafana-cloud-free.yaml`` next to this
module), holds Grafana Cloud's free tier with the date and source of its
figures. Another file is validated the same way; every problem is named
``file:line: field: message`` and raises :class:`InvalidInput` (exit 2)::

    tier = load_limits(Path("my-tier.yaml"))
    tier.metrics.active_series      # 10000
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from paychaos.contracts.errors import InvalidInput
from paychaos.scenario.marks import data_path, format_problems, load_with_marks, message_of

DEFAULT_LIMITS = Path(__file__).resolve().parent / "grafana-cloud-free.yaml"
MAX_FILE_BYTES = 64_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricsLimits(_Model):
    active_series: int = Field(gt=0, description="series with a sample in the last 20 minutes")
    included_dpm_per_series: float = Field(
        default=1.0, gt=0, description="data points per minute per series before DPM is billed"
    )


class VolumeLimit(_Model):
    gb_per_month: float = Field(gt=0)


class FreeTier(_Model):
    """What the tier includes per month, and where the figures come from."""

    name: str = Field(min_length=1)
    source: str = Field(min_length=1, description="where the figures were taken from")
    taken: datetime.date = Field(description="when they were taken (YYYY-MM-DD)")
    metrics: MetricsLimits
    logs: VolumeLimit
    traces: VolumeLimit
    gb_bytes: int = Field(default=10**9, gt=0, description="bytes in the tier's GB")
    days_per_month: float = Field(default=30.0, gt=0, le=31)
    rum_counts_as: Literal["logs", "none"] = Field(
        default="logs", description="where frontend (Faro) events are billed"
    )

    def describe(self) -> str:
        return (
            f"{self.name}: {self.metrics.active_series:,} series "
            f"(at {self.metrics.included_dpm_per_series:g} DPM), "
            f"{self.logs.gb_per_month:g} GB logs/month, {self.traces.gb_per_month:g} GB "
            f"traces/month (figures of {self.taken.isoformat()})"
        )


def parse_limits(text: str, source: str) -> FreeTier:
    """Validate a limits file's text; :class:`InvalidInput` naming file, line and field."""
    data, lines = load_with_marks(text, source, InvalidInput)
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}:1: (top level): a limits file is a mapping")
    try:
        return FreeTier.model_validate(data)
    except ValidationError as exc:
        errors = [(data_path(data, err["loc"]), message_of(err)) for err in exc.errors()]
        raise InvalidInput(format_problems(source, lines, errors)) from None


def load_limits(path: Path | None = None) -> FreeTier:
    """Read and validate a limits file (default: Grafana Cloud's free tier)."""
    path = path or DEFAULT_LIMITS
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidInput(f"{path}:1: (file): larger than {MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}:1: (file): not UTF-8 text") from None
    except OSError as exc:
        raise InvalidInput(f"{path}:1: (file): cannot read: {exc.strerror}") from None
    return parse_limits(text, str(path))


__all__ = ["DEFAULT_LIMITS", "FreeTier", "MetricsLimits", "VolumeLimit", "load_limits"]
