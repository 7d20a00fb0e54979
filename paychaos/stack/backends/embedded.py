"""The embedded stack (local processes, :mod:`paychaos.stack.embedded`) behind the backend interface."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from paychaos.stack.backends.base import SignalSources
from paychaos.stack.embedded import EmbeddedStack, StackConfig

if TYPE_CHECKING:
    from paychaos.chaos.target import StackTarget
    from paychaos.runner.stackctl import StackHandle


class EmbeddedBackend:
    """An :class:`~paychaos.stack.embedded.EmbeddedStack` as a :class:`StackBackend`."""

    name = "embedded"

    def __init__(self, cfg: StackConfig, *, stack: EmbeddedStack | None = None) -> None:
        self.stack = stack or EmbeddedStack(cfg)

    @property
    def urls(self) -> Mapping[str, str]:
        return self.stack.urls

    def start(self) -> None:
        self.stack.start()

    def stop(self) -> None:
        self.stack.stop()

    def __enter__(self) -> EmbeddedBackend:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, **self.stack.describe()}

    def chaos_target(self) -> StackTarget:
        from paychaos.chaos.target import StackTarget

        return StackTarget.from_embedded(self.stack)

    def handle(self, *, owned: bool = False) -> StackHandle:
        from paychaos.runner.stackctl import from_embedded

        return from_embedded(self.stack, owned=owned)

    def sources(self) -> SignalSources:
        return SignalSources.for_urls(self.stack.urls)


__all__ = ["EmbeddedBackend"]
