"""The NestJS variant without a stack: its build check, its target, the CLI's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from paychaos.cli import main
from paychaos.contracts.errors import StackError
from paychaos.stack import nestjs_app
from paychaos.stack.embedded import (
    StackConfig,
    StackPorts,
    build_specs,
    embedded_target,
    stack_urls,
)
from tests.cannot_run import cannot_run


def test_a_missing_node_is_named_with_what_to_install(tmp_path: Path) -> None:
    problem = nestjs_app.build_problem(str(tmp_path / "no-such-node"))
    assert problem is not None and "Node.js 20 or newer" in problem


def test_a_missing_build_is_named_with_the_command_that_makes_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    node = nestjs_app.node_binary()
    if node is None:
        cannot_run("no node on PATH (the NestJS service needs Node.js 20+)")
    monkeypatch.setattr(nestjs_app, "NESTJS_DIR", tmp_path)
    monkeypatch.setattr(nestjs_app, "ENTRY", tmp_path / "dist" / "main.js")
    problem = nestjs_app.build_problem(node)
    assert problem is not None and "make nestjs" in problem and "npm ci" in problem
    (tmp_path / "node_modules").mkdir()
    problem = nestjs_app.build_problem(node)
    assert problem is not None and "not built" in problem and "make nestjs" in problem
    with pytest.raises(StackError, match="make nestjs"):
        monkeypatch.setattr(nestjs_app, "node_binary", lambda: node)
        nestjs_app.require_build()


def test_up_with_a_missing_build_exits_non_zero_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(nestjs_app, "build_problem", lambda node=None: "--app nestjs: not built")
    # the build is checked before the ports (CI once saw this test's fixed 26000 taken
    # by another stack's automatic port, and `up` named the port instead of the build)
    code = main(["--state-dir", str(tmp_path), "up", "--app", "nestjs", "--port-base", "1"])
    err = capsys.readouterr().err
    assert code != 0 and "--app nestjs: not built" in err and "Traceback" not in err
    assert not (tmp_path / "stack.json").exists()  # nothing started


def test_run_with_the_nestjs_app_refuses_to_reuse_a_running_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = "scenarios/db-latency.yaml"
    code = main(["--state-dir", str(tmp_path), "run", scenario, "--reuse", "--app", "nestjs"])
    err = capsys.readouterr().err
    assert code != 0 and "not with --reuse" in err and "Traceback" not in err


def test_the_nestjs_target_offers_no_leak_hook_and_runs_node_as_the_api(tmp_path: Path) -> None:
    cfg = StackConfig(state_dir=tmp_path, ports=StackPorts.from_base(27000), app="nestjs")
    target = embedded_target(cfg, stack_urls(cfg), None)
    offered = target.capabilities()
    assert "api.leak" not in offered and "process.api" in offered and "traces" in offered
    assert "NestJS" in target.description
    python = embedded_target(
        StackConfig(state_dir=tmp_path, ports=StackPorts.from_base(27000)), stack_urls(cfg), None
    )
    assert "api.leak" in python.capabilities()
    if nestjs_app.build_problem() is None:
        api = next(spec for spec in build_specs(cfg) if spec.name == "api")
        assert api.argv[1] == str(nestjs_app.ENTRY) and "--database-url" in api.argv
        assert api.env["OTEL_EXPORTER_OTLP_ENDPOINT"] == stack_urls(cfg)["collector"]


LEAK_SCENARIO = """
name: leak
description: the app-leak fault, which needs the API's leak hook
traffic: {rate_per_s: 1, duration_s: 5}
faults:
  - {id: leak, fault: app-leak, at_s: 1, duration_s: 2, params: {size_mb: 8}}
expectations:
  - {type: ledger}
"""


def test_a_scenario_needing_the_leak_hook_is_refused_on_the_nestjs_target(tmp_path: Path) -> None:
    from paychaos.runner.actors import run_catalog
    from paychaos.runner.needs import unmet
    from paychaos.scenario.load import parse_scenario

    loaded = parse_scenario(LEAK_SCENARIO, "leak.yaml")
    ports = StackPorts.from_base(27000)
    nest = StackConfig(state_dir=tmp_path, ports=ports, app="nestjs")
    python = StackConfig(state_dir=tmp_path, ports=ports)
    gaps = unmet(loaded, embedded_target(nest, stack_urls(nest), None), run_catalog())
    assert [need for _, need in gaps] == ["api.leak"]
    assert unmet(loaded, embedded_target(python, stack_urls(python), None), run_catalog()) == []
