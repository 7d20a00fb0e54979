"""What a scenario needs of a target, and what a target cannot give it.

Each fault type declares its capabilities (:meth:`FaultCatalog.requires`), each
expectation type its own (``Check.requires``); steady-state probes and guards
read metrics or alerts. :func:`unmet` lists what the target lacks, each with
the part of the scenario that needs it, so the runner (and a suite) can refuse
before anything starts.

Example::

    unmet(loaded, target, catalog)
    # [("faults[0] db-latency", "proxy.database")]
"""

from __future__ import annotations

import urllib.parse

from paychaos.checks.build import build_check
from paychaos.contracts.errors import Unsupported
from paychaos.contracts.faults import FaultCatalog
from paychaos.contracts.scenario import AlertGuard, ErrorRatioGuard, MetricGuard, MetricProbe
from paychaos.contracts.target import Target, missing
from paychaos.scenario.load import LoadedScenario
from paychaos.stack.service import is_loopback


def needs(loaded: LoadedScenario, catalog: FaultCatalog) -> list[tuple[str, str]]:
    """``(what needs it, capability)`` for everything the scenario uses."""
    sc = loaded.scenario
    out: list[tuple[str, str]] = [("traffic", "checkout")]
    for index, step in enumerate(sc.faults):
        for need in catalog.requires(loaded.params[index]):
            out.append((f"faults[{index}] {step.fault}", need))
    for index, exp in enumerate(sc.expectations):
        for need in build_check(exp).requires:
            out.append((f"expectations[{index}] {exp.type}", need))
    for index, probe in enumerate(sc.steady_state.probes):
        kind = "metrics" if isinstance(probe, MetricProbe) else "alerts"
        out.append((f"steady_state.probes[{index}]", kind))
    for index, guard in enumerate(sc.guards):
        if isinstance(guard, MetricGuard):
            out.append((f"guards[{index}]", "metrics"))
        elif isinstance(guard, AlertGuard):
            out.append((f"guards[{index}]", "alerts"))
    return out


def is_local(target: Target) -> bool:
    """True when every URL of the target is on loopback."""
    return all(
        is_loopback(urllib.parse.urlsplit(url).hostname or "") for url in target.urls().values()
    )


def unmet(loaded: LoadedScenario, target: Target, catalog: FaultCatalog) -> list[tuple[str, str]]:
    """What the scenario needs that ``target`` does not offer (empty: it can run)."""
    offers = target.capabilities()
    out = [(what, need) for what, need in needs(loaded, catalog) if missing(offers, [need])]
    if not is_local(target) and not any(
        isinstance(g, ErrorRatioGuard) for g in loaded.scenario.guards
    ):
        out.append(("guards", "an error_ratio guard (required on a target that is not local)"))
    return out


def refusal(loaded: LoadedScenario, target: Target, gaps: list[tuple[str, str]]) -> Unsupported:
    """The error that refuses ``loaded`` on ``target``, naming each missing capability."""
    lines = [
        f"{loaded.source}: {what}: target {target.name} lacks {need.replace('|', ' or ')}"
        for what, need in gaps
    ]
    return Unsupported("\n".join(lines), tuple(gaps))


def check_supported(loaded: LoadedScenario, target: Target, catalog: FaultCatalog) -> None:
    """Raise :class:`Unsupported` when ``target`` cannot run ``loaded``."""
    gaps = unmet(loaded, target, catalog)
    if gaps:
        raise refusal(loaded, target, gaps)


__all__ = ["check_supported", "is_local", "needs", "refusal", "unmet"]
