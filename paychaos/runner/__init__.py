"""The scenario runner: stack handle, traffic, faults, timeline, progress, suite.

Example::

    from paychaos.runner.runner import run_scenario
    record = run_scenario(load_scenario(Path("scenarios/db-latency.yaml")), handle)
"""

from __future__ import annotations
