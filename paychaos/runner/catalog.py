"""Which fault catalog scenarios use: the chaos layer's registry.

``default_catalog()`` is the one place that decides; tests pass their own
catalog instead.
"""

from __future__ import annotations

from paychaos.runner.faults import FaultCatalog, RegistryFaultCatalog


def default_catalog() -> FaultCatalog:
    """The fault families scenarios may name (``paychaos chaos list`` shows them)."""
    return RegistryFaultCatalog()
