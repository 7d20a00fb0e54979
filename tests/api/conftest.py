"""A real embedded stack (every component a process on ephemeral loopback ports)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from paychaos.stack.embedded import EmbeddedStack, StackConfig, StackPorts


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    state: Path = tmp_path_factory.mktemp("stack")
    cfg = StackConfig(
        state_dir=state,
        ports=StackPorts.auto(),
        scrape_interval_s=1.0,
        gateway_latency_scale=0.05,
        gateway_seed=3,
        gateway_timeout_s=1.0,
    )
    embedded = EmbeddedStack(cfg)
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()
