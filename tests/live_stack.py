"""A running embedded stack as tests use it: its session (what the runner takes) and its URLs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from paychaos.stack.embedded import EmbeddedStack, StackConfig, StackPorts
from paychaos.stack.state import admin_token_file
from paychaos.targets.resolve import TargetSession


@dataclass
class LiveStack:
    """One started :class:`EmbeddedStack`, seen as a target."""

    stack: EmbeddedStack

    @property
    def session(self) -> TargetSession:
        return TargetSession(self.stack.target(), self.stack.cfg.state_dir)

    @property
    def urls(self) -> dict[str, str]:
        return dict(self.stack.urls)

    @property
    def admin_token(self) -> str:
        return admin_token_file(self.stack.cfg.state_dir).read_text().strip()


@contextmanager
def live_stack(state_dir: Path, **config: object) -> Iterator[LiveStack]:
    """Start an embedded stack on free loopback ports; always stop it."""
    cfg = StackConfig(state_dir=state_dir, ports=StackPorts.auto(), **config)  # type: ignore[arg-type]
    stack = EmbeddedStack(cfg)
    stack.start()
    try:
        yield LiveStack(stack)
    finally:
        stack.stop()
