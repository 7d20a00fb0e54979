"""``paychaos run … --target docker`` through the real CLI, on a real Docker Engine.

As a user would, in subprocesses: ``paychaos up --backend docker`` on free
ports, then one ``paychaos run`` of three built-in scenarios — unchanged — that
between them need every kind of actuator the Docker target has but the proxy's
(``db-latency``, a Toxiproxy latency toxic on the fault proxy's container, runs
on the Docker target in ``test_docker_nestjs.py`` and on the compose stack in
``test_compose_stack.py``):

- ``gateway-timeout-paypal``: the gateway container's admin API;
- ``payment-api-crash``: the API container's main process SIGKILLed, the
  engine's restart policy starting it again (``kill`` on a container);
- ``memory-pressure``: memory hogs on the engine's host, seen by the
  instance exporter container, one of them OOM-killed in its own cgroup;

then ``paychaos down`` (always). The stack is started the way ``paychaos run``
starts one for itself (1 s scrapes, gateway latencies scaled by 0.05), in a
temporary state directory removed at the end. (With ``paychaos up``'s
defaults — real latencies — about 4 % of crypto charges outlast the API's 2 s
gateway timeout, on either backend, and the scenarios' steady state, under 1 %
errors, does not hold.)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from docker_engine import REPO, docker_engine, ensure_base_image, unavailable

from paychaos.stack.backends.images import ImageSet, build_all
from paychaos.stack.service import reserve_port_block

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

SCENARIOS = (
    "scenarios/gateway-timeout-paypal.yaml",
    "scenarios/payment-api-crash.yaml",
    "scenarios/memory-pressure.yaml",
)
PORTS = 10  # StackPorts: api … instance, consecutive from --port-base


def free_port_base(count: int = PORTS) -> int:
    """A base port with ``count`` free loopback ports after it, below the ephemeral
    range (where a client's connection could take one before the stack binds it),
    each reserved against other paychaos processes until the stack binds it."""
    try:
        return reserve_port_block(count)
    except OSError as exc:
        unavailable(str(exc))
        raise AssertionError("unreachable: unavailable() skips or fails") from exc


def docker_up_args(project: str, *extra: str) -> list[str]:
    """``paychaos up --backend docker`` as these tests run it: ``extra`` flags, a reserved
    port block, 1 s scrapes and the suite's gateway speed."""
    return [
        *("up", "--backend", "docker", *extra),
        *("--port-base", str(free_port_base()), "--project", project),
        *("--scrape-interval-s", "1", "--gateway-latency-scale", "0.05"),
    ]


def host_oom_kills() -> int:
    """The kernel's OOM-kill count of this host (``/proc/vmstat``)."""
    for line in Path("/proc/vmstat").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


def not_passed(report: dict) -> str:
    """Every expectation, probe and fault of the report that did not pass, with its detail."""
    lines = []
    for record in report["runs"]:
        for exp in record["expectations"]:
            if exp["status"] != "passed":
                lines.append(
                    f"{record['scenario']}: {exp['name']}: {exp['status']}: {exp['detail']}"
                )
        for probe in record["probes"]:
            if not probe["ok"]:
                lines.append(f"{record['scenario']}: probe {probe['name']}: {probe['detail']}")
        lines += [
            f"{record['scenario']}: fault {f['id']}: {f['error']}"
            for f in record["faults"]
            if f["error"]
        ]
        # when, from the run's start: an event alert (InstanceOOMKill counts the host's
        # OOM kills over 2 min) already firing before its fault is never notified anew
        start = record["started_unix_s"]
        faults = [f"{f['id']} +{f['injected_unix_s'] - start:.0f}s" for f in record["faults"]]
        alerts = [f"{a['name']} +{a['first_unix_s'] - start:.0f}s" for a in record["alert_events"]]
        lines.append(f"{record['scenario']}: faults injected {faults}; alerts firing {alerts}")
    return "\n".join(lines)


def paychaos(
    state_dir: Path, *args: str, env: dict[str, str], timeout_s: float
) -> subprocess.CompletedProcess[str]:
    """``python -m paychaos.cli --state-dir STATE ARGS…`` from the checkout."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "paychaos.cli", "--state-dir", str(state_dir), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    print(f"paychaos {' '.join(args)}: exit {done.returncode} in {time.monotonic() - started:.0f}s")
    return done


def test_three_builtin_scenarios_pass_on_the_docker_target_through_the_cli():
    with docker_engine() as (client, host):
        images = ImageSet()
        ensure_base_image(client, host, images.base)
        print(f"\nimages built: {build_all(client, images)}")
        env = {**os.environ, "DOCKER_HOST": host, "PYTHONPATH": str(REPO)}
        env = {k: v for k, v in env.items() if not k.startswith("PAYCHAOS_")}
        project = f"paychaos-cli-{secrets.token_hex(3)}"
        state = Path(tempfile.mkdtemp(prefix="paychaos-cli-docker-"))
        reports = state / "reports"
        try:
            up = paychaos(state, *docker_up_args(project), env=env, timeout_s=600)
            assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
            oom_before = host_oom_kills()
            run = paychaos(
                state,
                "run",
                *SCENARIOS,
                "--target",
                "docker",
                "--no-progress",
                "--reports-dir",
                str(reports),
                env=env,
                timeout_s=1500,
            )
            output = run.stdout + run.stderr
            report_files = list(reports.glob("*/report.json"))
            report = json.loads(report_files[0].read_text()) if report_files else {"runs": []}
            oom = (
                f"OOM kills on this host during the run: {host_oom_kills() - oom_before} "
                "(memory-pressure causes 1; the Docker stack's InstanceOOMKill counts only "
                "those in its own containers' and hogs' cgroups)"
            )
            assert run.returncode == 0, f"{output[-4000:]}\n{not_passed(report)}\n{oom}"
            statuses = {r["scenario"]: r["status"] for r in report["runs"]}
            assert statuses == {Path(s).stem: "passed" for s in SCENARIOS}, output[-6000:]
            assert report["status"] == "passed"
            for record in report["runs"]:
                assert record["stack"]["kind"] == "docker", record["stack"]
                for fault in record["faults"]:
                    assert fault["injected_unix_s"] and not fault["error"], fault
            crash = next(r for r in report["runs"] if r["scenario"] == "payment-api-crash")
            assert [f["target"] for f in crash["faults"]] == ["container/api"]
        finally:
            down = paychaos(state, "down", env=env, timeout_s=180)
            left = client.containers.list(
                all=True, filters={"label": f"paychaos.project={project}"}
            )
            shutil.rmtree(state, ignore_errors=True)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not left, f"containers left behind: {[c.name for c in left]}"
        assert not state.exists()
