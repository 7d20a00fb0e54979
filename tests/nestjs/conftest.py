"""An embedded stack whose payment API is the seed's NestJS service (``--app nestjs``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paychaos.stack.nestjs_app import build_problem
from tests.cannot_run import cannot_run
from tests.live_stack import LiveStack, live_stack


def require_nestjs() -> None:
    """Skip without Node.js 20+ or the service's build; under CI=true, fail with the reason."""
    problem = build_problem()
    if problem is None:
        return
    cannot_run(problem)


@pytest.fixture(scope="package")
def nest_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    require_nestjs()
    with live_stack(
        tmp_path_factory.mktemp("nestjs-stack"),
        app="nestjs",
        scrape_interval_s=1.0,
        gateway_latency_scale=0.05,
        gateway_timeout_s=1.0,
    ) as live:
        yield live
