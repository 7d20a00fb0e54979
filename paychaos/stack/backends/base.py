"""The stack backend interface: where the system under test runs (``paychaos up --backend``).

Two backends implement it:

- ``embedded`` (:class:`~paychaos.stack.backends.embedded.EmbeddedBackend`): every component
  as a local process (:mod:`paychaos.stack.embedded`);
- ``docker`` (:class:`~paychaos.stack.backends.docker.DockerStack`): every component as a
  container on the host network, driven with the ``docker`` SDK.

A backend starts and stops the stack, says where it is (``urls``), hands the
chaos layer its :class:`~paychaos.chaos.target.StackTarget` and the scenario runner its
:class:`~paychaos.runner.stackctl.StackHandle`, and names the signal sources
the checks read (:class:`SignalSources`): the collector for the embedded
stack; Tempo (TraceQL) and Loki (LogQL) when the Grafana stack runs.

Example::

    backend = create_backend("docker", state_dir=Path(".paychaos"))
    with backend:
        handle = backend.handle()
        sources = backend.sources()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from paychaos.contracts.signals import (
    AlertNotification,
    AlertNotificationSource,
    AlertQuery,
    LogQuery,
    LogRecord,
    LogSource,
    RumItem,
    RumQuery,
    RumSource,
    Span,
    SpanQuery,
    TraceSource,
)

if TYPE_CHECKING:
    from paychaos.chaos.target import StackTarget
    from paychaos.runner.stackctl import StackHandle

BACKENDS = ("embedded", "docker")


@dataclass(frozen=True)
class SignalSources:
    """The four read-only sources checks use; each may be a different backend.

    :meth:`find_spans` and friends delegate, so one ``SignalSources`` satisfies
    every protocol of :mod:`paychaos.contracts.signals` (what ``RunOptions.collector`` wants).
    """

    traces: TraceSource
    logs: LogSource
    rum: RumSource
    notifications: AlertNotificationSource

    def find_spans(self, query: SpanQuery) -> list[Span]:
        return self.traces.find_spans(query)

    def get_trace(self, trace_id: str) -> list[Span]:
        return self.traces.get_trace(trace_id)

    def find_logs(self, query: LogQuery) -> list[LogRecord]:
        return self.logs.find_logs(query)

    def find_rum(self, query: RumQuery) -> list[RumItem]:
        return self.rum.find_rum(query)

    def find_alert_notifications(self, query: AlertQuery) -> list[AlertNotification]:
        return self.notifications.find_alert_notifications(query)

    @classmethod
    def for_urls(cls, urls: Mapping[str, str], *, timeout_s: float = 10.0) -> SignalSources:
        """Tempo and Loki when ``urls`` has them, the collector for the rest."""
        from paychaos.stack.backends.loki import LokiLogSource
        from paychaos.stack.backends.tempo import TempoTraceSource
        from paychaos.stack.collector.client import CollectorClient

        collector = CollectorClient(urls["collector"], timeout_s=timeout_s)
        traces: TraceSource = (
            TempoTraceSource(urls["tempo"], timeout_s=timeout_s) if "tempo" in urls else collector
        )
        logs: LogSource = (
            LokiLogSource(urls["loki"], timeout_s=timeout_s) if "loki" in urls else collector
        )
        return cls(traces=traces, logs=logs, rum=collector, notifications=collector)


@runtime_checkable
class StackBackend(Protocol):
    """A running (or startable) system under test."""

    name: str
    urls: Mapping[str, str]

    def start(self) -> None:
        """Start every component and wait until each is healthy (raise StackError)."""
        ...

    def stop(self) -> None:
        """Stop and remove what :meth:`start` started, nothing else (idempotent)."""
        ...

    def describe(self) -> dict[str, Any]:
        """What ``paychaos status`` shows and ``stack.json`` records."""
        ...

    def chaos_target(self) -> StackTarget:
        """Where the chaos layer's faults go."""
        ...

    def handle(self, *, owned: bool = False) -> StackHandle:
        """The scenario runner's view of the stack."""
        ...

    def sources(self) -> SignalSources:
        """Where the checks read traces, logs, RUM and alert notifications."""
        ...


__all__ = ["BACKENDS", "SignalSources", "StackBackend"]
