"""Stack backends: where the system under test runs (``paychaos up --backend docker|embedded``).

- :mod:`stack.backends.base` — the :class:`StackBackend` interface and :class:`SignalSources`;
- :mod:`stack.backends.embedded` — local processes (the default);
- :mod:`stack.backends.docker` — containers through the ``docker`` SDK;
- :mod:`stack.backends.images` — the project's images, built on a local base image;
- :mod:`stack.backends.tempo` / :mod:`stack.backends.loki` — the trace and log
  sources of the Grafana stack (TraceQL, LogQL);
- :mod:`stack.backends.catalog` — the Docker fault catalog for the scenario runner.
"""

from __future__ import annotations

from stack.backends.base import BACKENDS, SignalSources, StackBackend

__all__ = ["BACKENDS", "SignalSources", "StackBackend"]
