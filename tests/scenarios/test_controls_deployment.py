"""Negative control of ``deployment-under-load``, and the release record it relies on.

The scenario's key expectations are the deployment *event*: the new version in
``shop_build_info`` and the ``deployed v2.0`` log line. Here the real API start-up
code announces a release read from a real release file, its real JSON log line
and metrics registry feed the scenario's own checks (in-memory sources): they
hold; an API started without the deployment's record (the key signal removed)
logs a plain start on the default version, and the same checks fail.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from pathlib import Path

import pytest

from paychaos.chaos.deploy import Deploy
from paychaos.checks import CheckContext, Window
from paychaos.checks.build import build_check
from paychaos.contracts.errors import InvalidFault
from paychaos.contracts.metrics import Sample
from paychaos.contracts.release import (
    DEFAULT_VERSION,
    Release,
    check_version,
    read_release,
    write_release,
)
from paychaos.contracts.scenario import LogExpectation, MetricExpectation
from paychaos.contracts.signals import LogRecord
from paychaos.scenario import load_scenario
from paychaos.stack.api.app import ApiSettings, announce_release
from paychaos.stack.api.db import DbSettings
from paychaos.stack.api.gateway_client import GatewaySettings
from paychaos.stack.api.metrics import create_metrics
from paychaos.stack.collector.memory import InMemorySources
from paychaos.stack.monitoring.memory import InMemoryMetricsSource
from paychaos.stack.telemetry import JsonFormatter

REPO = Path(__file__).resolve().parents[2]
NOW = time.time()


def _start_api(release_file: Path | None) -> tuple[list[LogRecord], list[Sample]]:
    """What a payment API starting with this release file logs (its JSON lines, as the
    collector stores them) and exports as ``shop_build_info``."""
    settings = ApiSettings(
        database=DbSettings(url="postgresql://unused@127.0.0.1:1/x"),
        gateway=GatewaySettings(url="http://127.0.0.1:1"),
        release=read_release(release_file) if release_file else None,
    )
    metrics = create_metrics()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("payment-api"))
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)

    async def start() -> None:
        task = announce_release(settings, metrics)
        if task is not None:
            task.cancel()

    try:
        asyncio.run(start())
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    logs = []
    for line in stream.getvalue().splitlines():
        entry = json.loads(line)
        if entry.get("logger") != "payment-api":
            continue
        attrs = {
            k: v
            for k, v in entry.items()
            if k not in ("ts", "level", "service", "logger", "msg") and isinstance(v, str)
        }
        logs.append(
            LogRecord(
                int(NOW * 1e9), entry["level"], entry["msg"], entry["service"], attributes=attrs
            )
        )
    samples = [
        Sample({"job": "payment-api", **s.labels}, s.value)
        for family in metrics.registry.collect()
        if family.name == "shop_build_info"
        for s in family.samples
    ]
    return logs, samples


def _judge(logs: list[LogRecord], samples: list[Sample]) -> dict[str, bool]:
    """The scenario's own version and log expectations against what the API produced."""
    scenario = load_scenario(REPO / "scenarios" / "deployment-under-load.yaml").scenario
    version = str(scenario.faults[0].params["version"])
    sources, metrics = InMemorySources(), InMemoryMetricsSource()
    sources.add_logs(logs)
    seen: dict[str, bool] = {}
    for exp in scenario.expectations:
        if isinstance(exp, MetricExpectation) and "shop_build_info" in exp.query:
            # the query selects the deployed version of the API's job: answer it as
            # Prometheus would, from the registry's series
            assert f'version="{version}"' in exp.query and 'job="payment-api"' in exp.query
            metrics.set_query(exp.query, [s for s in samples if s.labels["version"] == version])
        elif not isinstance(exp, LogExpectation):
            continue
        ctx = CheckContext(
            metrics=metrics, traces=sources, logs=sources, rum=sources, notifications=sources
        )
        ctx.clock = lambda: NOW
        seen[exp.type] = build_check(exp).observe(ctx, Window(since_unix_s=NOW - 60)).seen
    assert set(seen) == {"metric", "log"}
    return seen


def test_deployment_event_seen_only_when_the_api_knows_it_was_deployed(tmp_path: Path) -> None:
    release_file = tmp_path / "api-release.json"
    # the TTL against the wall clock now (NOW is when the module was imported: in a
    # full pytest run that is many minutes before this test)
    until = time.time() + 600
    write_release(release_file, Release("v2.0", previous=DEFAULT_VERSION, until_unix_s=until))
    logs, samples = _start_api(release_file)
    assert _judge(logs, samples) == {"metric": True, "log": True}

    logs, samples = _start_api(None)  # removed: no deployment record
    assert [r.body for r in logs] == [f"payment-api {DEFAULT_VERSION} started"]
    assert _judge(logs, samples) == {"metric": False, "log": False}

    # after its TTL the record is a rollback: the API runs and logs the previous version
    expired = time.time() - 1
    write_release(release_file, Release("v2.0", previous=DEFAULT_VERSION, until_unix_s=expired))
    logs, samples = _start_api(release_file)
    assert [r.body for r in logs] == [f"rolled back to {DEFAULT_VERSION}"]
    assert _judge(logs, samples) == {"metric": False, "log": False}


def test_release_record_round_trip_and_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    assert read_release(path) is None
    write_release(path, Release("v2.0-rc.1", previous="v1.0", until_unix_s=100.0))
    release = read_release(path)
    assert release is not None and release.effective(99.0) == "v2.0-rc.1"
    assert release.effective(100.0) == "v1.0"
    path.write_text('{"version": "2 0"}')
    assert read_release(path) is None  # a bad record is no release, never a crash
    for good in ("v2.0", "2.1.3", "v10.0.1-rc.2"):
        assert check_version(good) == good
    for bad in ("", "v2 0", "latest", "v2.0;rm", "v" + "1" * 3 + "." * 2):
        with pytest.raises(ValueError, match="not a version label"):
            check_version(bad)


def test_deploy_fault_validates_its_parameters_before_touching_anything() -> None:
    fault = Deploy.prepare({"component": "api", "version": "v2.0"}, duration_s=30)
    assert fault.describe() == "deploy --component api --version v2.0 --for 30s"
    assert fault.requires() == ["process.api"]
    with pytest.raises(InvalidFault, match="--version"):
        Deploy.prepare({"version": "v2 0"}, duration_s=30)
    with pytest.raises(InvalidFault, match="one of api"):
        Deploy.prepare({"component": "gateway"}, duration_s=30)
    with pytest.raises(InvalidFault, match="duration"):
        Deploy.prepare({}, duration_s=None)
