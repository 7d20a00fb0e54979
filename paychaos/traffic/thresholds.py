"""Pass/fail thresholds of a plain Locust run, so ``locust --headless`` can gate a pipeline.

Evaluated once, on ``quitting``, on the master (or the only process), over
the checkout requests' stats; a failed threshold sets the exit code
:data:`EXIT_THRESHOLD_FAILED` and is printed by name::

    failures = evaluate(Observed(error_ratio=0.2, p95_ms=800, rate_per_s=12), settings)
    # ["--max-error-ratio: checkout error ratio 0.200 > 0.05"]
"""

from __future__ import annotations

from dataclasses import dataclass

from paychaos.traffic.options import TrafficSettings

EXIT_THRESHOLD_FAILED = 3


@dataclass(frozen=True)
class Observed:
    """What the run measured for checkout requests."""

    requests: int
    error_ratio: float
    p95_ms: float
    rate_per_s: float


def evaluate(observed: Observed, settings: TrafficSettings) -> list[str]:
    """One sentence per failed threshold (empty when every threshold held)."""
    failures: list[str] = []
    if settings.max_error_ratio is not None and observed.error_ratio > settings.max_error_ratio:
        failures.append(
            f"--max-error-ratio: checkout error ratio {observed.error_ratio:.3f} "
            f"> {settings.max_error_ratio}"
        )
    if settings.max_p95_ms is not None and (
        observed.requests == 0 or observed.p95_ms > settings.max_p95_ms
    ):
        failures.append(
            f"--max-p95-ms: checkout p95 {observed.p95_ms:.0f} ms > {settings.max_p95_ms:g} ms"
        )
    if settings.min_rate_per_s is not None and observed.rate_per_s < settings.min_rate_per_s:
        failures.append(
            f"--min-rate: {observed.rate_per_s:.2f} checkouts/s < {settings.min_rate_per_s:g}"
        )
    return failures
