"""The Docker backend against a real Docker Engine.

Builds the local base image (debootstrap) and the project's images on it,
starts the stack as containers, and:

- runs a scenario through the scenario runner with the Docker fault catalog:
  the gateway container paused, Alertmanager's container killed for 15 s
  (``docker-kill``: an outage of known length), the API's
  memory limit lowered — and the checks (real Prometheus in a container)
  seeing the gateway and Alertmanager scrapes fail and the API's gateway
  timeouts; afterwards every container is back as it was;
- puts a memory hog in the API container's cgroup under a lowered limit: the
  kernel OOM-kills inside the container (its cgroup's ``oom_kill`` counter),
  the fault reverts and the limit is restored;
- a negative control: the same kind of check with no fault is not met.

Skipped, with the reason, when no Docker Engine answers and none can be started.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
from docker_engine import docker_engine, ensure_base_image

from paychaos.chaos.base import InjectContext
from paychaos.chaos.catalog import RegistryFaultCatalog
from paychaos.chaos.docker_faults import DockerMemoryHog, DockerMemoryLimit, container_cgroup_dir
from paychaos.chaos.journal import journal_path
from paychaos.chaos.target import FaultTarget
from paychaos.runner.runner import RunOptions, run_scenario
from paychaos.scenario.load import parse_scenario
from paychaos.stack.backends.docker import DockerStack, DockerStackConfig
from paychaos.stack.backends.images import ImageSet, build_all
from paychaos.stack.embedded import StackPorts
from paychaos.stack.monitoring.promapi import PrometheusClient
from paychaos.targets.resolve import TargetSession

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

SCENARIO = """
name: docker-chaos
description: containers paused, killed and memory-limited through the Docker backend
traffic: {rate_per_s: 5, duration_s: 40}
faults:
  - {id: pause-gw, fault: pause, at_s: 5, duration_s: 12, params: {component: gateway}}
  - {id: kill-am, fault: docker-kill, at_s: 5, duration_s: 15, params: {component: alertmanager}}
  - {id: limit-api, fault: docker-memory-limit, at_s: 5, duration_s: 20,
     params: {component: api, limit_mb: 384}}
expectations:
  - name: Prometheus cannot scrape the paused gateway
    type: metric
    query: min(up{job="gateway"})
    op: "<"
    value: 1
    after: pause-gw
    within_s: 20
  - name: the API times out on the paused gateway
    type: metric
    query: sum(increase(shop_gateway_timeouts_total[1m]))
    op: ">"
    value: 0
    after: pause-gw
    within_s: 25
  - name: Prometheus cannot scrape the killed Alertmanager
    type: metric
    query: min(up{job="alertmanager"})
    op: "<"
    value: 1
    after: kill-am
    within_s: 20
recovery: {within_s: 30}
"""

NEGATIVE = """
name: docker-no-fault
description: negative control, nothing is broken so the scrape never fails
traffic: {rate_per_s: 2, duration_s: 8}
expectations:
  - name: Prometheus cannot scrape the gateway
    type: metric
    query: min(up{job="gateway"})
    op: "<"
    value: 1
    within_s: 6
recovery: {within_s: 5}
"""


@pytest.fixture(scope="module")
def docker_stack(tmp_path_factory):
    with docker_engine() as (client, host):
        images = ImageSet()
        base_s = ensure_base_image(client, host, images.base)
        build_s = build_all(client, images)
        print(f"\nbase image {base_s:.0f}s, images {build_s}")
        state = tmp_path_factory.mktemp("docker-stack")
        cfg = DockerStackConfig(
            state_dir=state,
            ports=StackPorts.auto(),
            project=f"paychaos-test-{secrets.token_hex(3)}",
            docker_host=host,
            scrape_interval_s=1.0,
            gateway_latency_scale=0.05,
            gateway_timeout_s=1.0,
            build_missing=False,
        )
        stack = DockerStack(cfg, client=client)
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()
            left = client.containers.list(
                all=True, filters={"label": f"paychaos.project={cfg.project}"}
            )
            assert not left, f"containers left behind: {[c.name for c in left]}"


def restored_limit(container) -> int:
    return int(container.attrs["HostConfig"].get("Memory") or 0)


def host_memory(container) -> int:
    """What "no limit" is restored as: the engine cannot remove a limit, only raise it."""
    return int(container.client.info()["MemTotal"])


def wait_until(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_stack_runs_as_containers_and_prometheus_scrapes_them(docker_stack):
    containers = docker_stack.containers()
    assert set(containers) == {s.component for s in docker_stack.specs}
    assert all(c.status == "running" for c in containers.values())
    prom = PrometheusClient(docker_stack.urls["prometheus"], timeout_s=5)
    wait_until(
        lambda: (
            {s.labels.get("job") for s in prom.query("up == 1")}
            >= {"payment-api", "gateway", "collector", "fault-proxy", "instance"}
        ),
        30,
        "every target up",
    )


def test_scenario_through_the_docker_backend(docker_stack):
    catalog = RegistryFaultCatalog()
    loaded = parse_scenario(SCENARIO, "docker-chaos.yaml", catalog=catalog)
    api = docker_stack.containers()["api"]
    limit_before = int(api.attrs["HostConfig"].get("Memory") or 0)
    record = run_scenario(
        loaded,
        TargetSession(docker_stack.target(), docker_stack.cfg.state_dir),
        RunOptions(catalog=catalog),
    )
    detail = "\n".join(
        f"{e.name}: {e.status} {getattr(e, 'detail', '')}" for e in record.expectations
    )
    assert record.status == "passed", f"{record.status} {record.reason}\n{detail}"
    assert record.traffic["completed"] > 0
    # everything is back as it was
    containers = docker_stack.containers()
    for name in ("gateway", "alertmanager", "api"):
        containers[name].reload()
        assert containers[name].status == "running", name
    assert restored_limit(containers["api"]) == (limit_before or host_memory(containers["api"]))


def test_negative_control_no_fault_no_signal(docker_stack):
    catalog = RegistryFaultCatalog()
    loaded = parse_scenario(NEGATIVE, "negative.yaml", catalog=catalog)
    record = run_scenario(
        loaded,
        TargetSession(docker_stack.target(), docker_stack.cfg.state_dir),
        RunOptions(catalog=catalog),
    )
    assert record.status == "failed", record.reason


def oom_kills(cgroup: Path) -> int:
    for name in ("memory.oom_control", "memory.events"):
        path = cgroup / name
        if path.exists():
            for line in path.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    return 0


def test_memory_hog_in_a_container_is_oom_killed_under_its_limit(docker_stack):
    target = FaultTarget(docker_stack.target())
    api = docker_stack.containers()["api"]
    cgroup = container_cgroup_dir(int(api.attrs["State"]["Pid"]))
    before = oom_kills(cgroup)
    limit = DockerMemoryLimit.prepare({"component": "api", "limit_mb": 200}, duration_s=60)
    hog = DockerMemoryHog.prepare(
        {"component": "api", "rate_mb_per_s": 200, "max_mb": 400}, duration_s=60
    )
    path = journal_path(target.state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    applied_limit: dict = {}
    applied_hog: dict = {}
    now = time.time()

    def ctx(fault_id: str) -> InjectContext:
        return InjectContext(fault_id, target, 75.0, now + 75.0, path)

    try:
        limit.inject(ctx("f_limit"), applied_limit)
        api.reload()
        assert api.attrs["HostConfig"]["Memory"] == 200 * 1024 * 1024
        hog.inject(ctx("f_hog"), applied_hog)
        wait_until(lambda: oom_kills(cgroup) > before, 30, "an OOM kill in the API container")
    finally:
        details = hog.revert(target, applied_hog)
        limit.revert(target, applied_limit)
    assert details["container_oom_kills"] > before
    api.reload()
    assert restored_limit(api) == host_memory(api)  # no limit in effect again
    assert api.status == "running"  # the kernel chose the hog, the largest process
