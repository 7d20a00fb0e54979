"""A real embedded stack for the scenario runner's tests (ephemeral loopback ports)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live_stack import LiveStack, live_stack


@pytest.fixture(scope="package")
def run_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    with live_stack(
        tmp_path_factory.mktemp("scenario-stack"),
        scrape_interval_s=1.0,
        gateway_latency_scale=0.05,
        gateway_timeout_s=1.0,
    ) as live:
        yield live
