"""Stack backends: where the system under test runs (``paychaos up --backend docker|embedded``).

- :mod:`paychaos.stack.backends.base` — the :class:`StackBackend` interface and :class:`SignalSources`;
- :mod:`paychaos.stack.backends.embedded` — local processes (the default);
- :mod:`paychaos.stack.backends.docker` — containers through the ``docker`` SDK;
- :mod:`paychaos.stack.backends.images` — the project's images, built on a local base image;
- :mod:`paychaos.stack.backends.tempo` / :mod:`paychaos.stack.backends.loki` — the trace and log
  sources of the Grafana stack (TraceQL, LogQL);
- :mod:`paychaos.chaos.catalog` — the Docker fault catalog for the scenario runner.
"""

from __future__ import annotations

from paychaos.stack.backends.base import BACKENDS, SignalSources, StackBackend

__all__ = ["BACKENDS", "SignalSources", "StackBackend"]
