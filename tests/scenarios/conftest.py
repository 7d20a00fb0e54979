"""A real embedded stack for the scenario runner's tests (ephemeral loopback ports)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paychaos.runner.stackctl import StackHandle, from_embedded
from paychaos.stack.embedded import EmbeddedStack, StackConfig, StackPorts


@pytest.fixture(scope="package")
def run_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    cfg = StackConfig(
        state_dir=tmp_path_factory.mktemp("scenario-stack"),
        ports=StackPorts.auto(),
        scrape_interval_s=1.0,
        gateway_latency_scale=0.05,
        gateway_timeout_s=1.0,
    )
    stack = EmbeddedStack(cfg)
    stack.start()
    try:
        yield from_embedded(stack)
    finally:
        stack.stop()
