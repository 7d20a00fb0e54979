"""The stack backend interface: where a built-in system under test runs (``paychaos up --backend``).

Two backends implement it:

- ``embedded`` (:class:`~paychaos.stack.embedded.EmbeddedStack`): every component
  as a local process;
- ``docker`` (:class:`~paychaos.stack.backends.docker.DockerStack`): every component as a
  container on the host network, driven with the ``docker`` SDK.

A backend starts and stops the stack and says what it is as a
:class:`~paychaos.contracts.target.Target`: every command then works against the
target, as against any deployment. :func:`sources_for` opens the signal sources
a target names (the collector; Tempo and Loki where the Grafana stack runs).

Example::

    with DockerStack(cfg) as stack:
        sources = sources_for(stack.target())
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from paychaos.contracts.errors import StackError
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
from paychaos.contracts.target import SignalStore, Target

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


class _Absent:
    """A source the target does not have: every query says so."""

    def __init__(self, what: str) -> None:
        self.what = what

    def _fail(self, *_: object) -> list[Any]:
        raise StackError(f"the target has no {self.what} source")

    find_spans = get_trace = find_logs = find_rum = find_alert_notifications = _fail


def _store(store: SignalStore | None, what: str, timeout_s: float) -> Any:
    from paychaos.stack.backends.loki import LokiLogSource
    from paychaos.stack.backends.tempo import TempoTraceSource
    from paychaos.stack.collector.client import CollectorClient

    if store is None:
        return _Absent(what)
    if store.kind == "tempo":
        return TempoTraceSource(store.url, timeout_s=timeout_s)
    if store.kind == "loki":
        return LokiLogSource(store.url, timeout_s=timeout_s)
    return CollectorClient(store.url, timeout_s=timeout_s)


def sources_for(target: Target, *, timeout_s: float = 10.0) -> SignalSources:
    """The trace, log, RUM and notification sources ``target`` names."""
    sig = target.signals
    return SignalSources(
        traces=_store(sig.traces, "traces", timeout_s),
        logs=_store(sig.logs, "logs", timeout_s),
        rum=_store(sig.rum, "rum", timeout_s),
        notifications=_store(sig.notifications, "notifications", timeout_s),
    )


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

    def target(self) -> Target:
        """The running stack as a target (what every command works against)."""
        ...


__all__ = ["BACKENDS", "SignalSources", "StackBackend", "sources_for"]
