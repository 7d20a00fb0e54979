"""The free-tier fit (the strategy's §7.3): what the traffic produces, projected to a store.

``paychaos budget`` measures, on a running target, the active series (and which
metric and label dominate), samples per second, and log, trace and frontend
bytes per checkout (:mod:`paychaos.budget.measure`); projects them to a store
of N checkouts a day against a free tier read from an editable YAML file
(:mod:`paychaos.budget.limits`, :mod:`paychaos.budget.project`); and answers
the largest store that fits, the first limit hit, and what a cardinality
explosion does to it (:mod:`paychaos.budget.report`).
"""

from __future__ import annotations

from paychaos.budget.limits import DEFAULT_LIMITS, FreeTier, load_limits
from paychaos.budget.measure import Measurement, Sources, measure, sources_of
from paychaos.budget.project import Explosion, Rates, fit, parse_explosion, project
from paychaos.budget.report import BudgetReport, render_text, run_budget, to_json

__all__ = [
    "DEFAULT_LIMITS",
    "BudgetReport",
    "Explosion",
    "FreeTier",
    "Measurement",
    "Rates",
    "Sources",
    "fit",
    "load_limits",
    "measure",
    "parse_explosion",
    "project",
    "render_text",
    "run_budget",
    "sources_of",
    "to_json",
]
