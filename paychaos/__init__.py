"""paychaos: a load and chaos simulator for an e-commerce payment system.

The top level of the repository is the map: ``locustfiles/`` (traffic),
``chaos/`` (faults), ``stack/`` (the system under test and its telemetry),
``scenarios/`` (experiments) and this package, the engine (CLI, scenarios,
checks, reports).
"""

from __future__ import annotations

from paychaos.contracts.errors import (
    ComponentFailed,
    ExpectationFailed,
    FaultInjectionFailed,
    InvalidFault,
    InvalidInput,
    InvalidScenario,
    MissingDependency,
    PaychaosError,
    RollbackFailed,
    StackError,
)

__version__ = "0.1.0"

__all__ = [
    "ComponentFailed",
    "ExpectationFailed",
    "FaultInjectionFailed",
    "InvalidFault",
    "InvalidInput",
    "InvalidScenario",
    "MissingDependency",
    "PaychaosError",
    "RollbackFailed",
    "StackError",
    "__version__",
]
