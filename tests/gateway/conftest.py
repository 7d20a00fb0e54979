"""Fixtures of the gateway tests: a real gateway process per module, always stopped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gateway_harness import ADMIN_TOKEN, GatewayProcess, no_declines_profiles, running_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One instant gateway (latency scale 0) shared by a test module."""
    tmp = tmp_path_factory.mktemp("gateway")
    with running_gateway(
        "--latency-scale",
        "0",
        "--seed",
        "7",
        "--admin-token",
        ADMIN_TOKEN,
        "--sweep-interval-s",
        "0.2",
        "--log-level",
        "debug",
        "--ledger",
        str(tmp / "ledger.jsonl"),
        "--profiles",
        str(no_declines_profiles(tmp)),
        stderr_path=tmp / "stderr.log",
    ) as proc:
        yield proc
