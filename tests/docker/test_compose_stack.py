"""``stack/docker-compose.yml`` itself, brought up with docker-compose on a real engine.

What needs no registry runs: every service built from this repository (the
images the Docker backend builds, same tags) with the profiles ``local-telemetry``
(a Prometheus agent scraping in Alloy's place) and ``local-proxy`` (the project's
Toxiproxy-compatible proxy in the real Toxiproxy's place). Then, through the
CLI, against the checked-in ``targets/compose.yaml``:

- ``paychaos target check`` must pass (every endpoint and actuator answers,
  the gateway's admin token handed by compose from the environment works);
- ``paychaos run scenarios/db-latency.yaml`` must pass, unchanged;

and ``docker-compose down -v`` always. The compose ports are fixed: one in use
makes the test skip with the reason — or, under CI, fail with it.
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
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from docker_engine import REPO, docker_engine, ensure_base_image, unavailable

from paychaos.stack.backends.images import ImageSet, build_all
from paychaos.stack.service import port_free

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

COMPOSE = "stack/docker-compose.yml"  # through the symlink: its build context `..` is the repo
PROFILES = ("local-telemetry", "local-proxy")
#: What these profiles start (nothing pulled: no grafana, loki, tempo, alloy, toxiproxy).
STARTED = {
    "postgres", "gateway", "proxy", "api", "collector", "prometheus", "scraper",
    "alertmanager", "master", "worker",
}  # fmt: skip
PORTS = {
    "api": 8000, "gateway": 8101, "postgres": 15432, "fault proxy API": 8474,
    "proxy to postgres": 15433, "proxy to gateway": 8102, "collector": 4320,
    "prometheus": 9090, "alertmanager": 9093, "prometheus agent": 9091,
    "locust web": 8089, "locust master": 5557,
}  # fmt: skip


def compose_command() -> list[str]:
    """Debian's ``docker-compose``, or the ``docker compose`` plugin."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    unavailable("neither docker-compose nor the docker compose plugin is installed")
    raise AssertionError("unreachable: unavailable() skips or fails")


def run(argv: list[str], env: dict[str, str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    done = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    print(f"{' '.join(argv[:8])} …: exit {done.returncode} in {time.monotonic() - started:.0f}s")
    return done


def prometheus_has(query: str) -> bool:
    url = "http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode({"query": query})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=3) as response:
            return bool(json.load(response)["data"]["result"])
    except (OSError, ValueError, KeyError):
        return False


def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")


def test_compose_images_are_the_ones_the_backend_builds():
    services = yaml.safe_load((REPO / COMPOSE).read_text())["services"]
    images = ImageSet()
    assert services["api"]["image"] == images.app
    assert services["postgres"]["image"] == images.postgres
    assert services["prometheus"]["image"] == images.prometheus
    assert services["scraper"]["image"] == images.prometheus


def test_the_composed_stack_passes_target_check_and_db_latency():
    compose = compose_command()
    with docker_engine() as (client, host):
        images = ImageSet()
        ensure_base_image(client, host, images.base)
        print(f"\nimages built: {build_all(client, images)}")
        busy = [f"{port} ({name})" for name, port in PORTS.items() if not port_free(port)]
        if busy:
            unavailable(f"the compose file's fixed ports are in use: {', '.join(busy)}")
        project = f"paychaos-compose-{secrets.token_hex(3)}"
        token = secrets.token_hex(16)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYCHAOS_")}
        env |= {
            "DOCKER_HOST": host,
            "PYTHONPATH": str(REPO),
            "PAYCHAOS_ADMIN_TOKEN": token,  # compose passes it on by environment
            "PAYCHAOS_OTLP_ENDPOINT": "http://127.0.0.1:4320",  # no Alloy: to the collector
            "PAYCHAOS_GATEWAY_LATENCY_SCALE": "0.05",  # as for stacks `paychaos run` starts
        }
        base = [*compose, "-f", COMPOSE, "-p", project]
        for profile in PROFILES:
            base += ["--profile", profile]
        state = Path(tempfile.mkdtemp(prefix="paychaos-compose-"))
        paychaos = [sys.executable, "-m", "paychaos.cli", "--state-dir", str(state)]
        try:
            up = run([*base, "up", "-d", "--no-build"], env, 600)
            assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
            containers = client.containers.list(
                all=True, filters={"label": f"com.docker.compose.project={project}"}
            )
            started = {c.labels["com.docker.compose.service"] for c in containers}
            assert started == STARTED
            for container in containers:  # no token on any command line
                assert token not in " ".join(container.attrs["Config"]["Cmd"] or [])
            wait_until(
                lambda: (
                    prometheus_has('up{job="payment-api"} == 1')
                    and prometheus_has('up{job="fault-proxy"} == 1')
                ),
                180,
                "Prometheus to receive the agent's scrapes of the API and the proxy",
            )
            check = run(
                [*paychaos, "target", "check", "--target", "targets/compose.yaml"], env, 120
            )
            out = check.stdout + check.stderr
            print(check.stdout)
            assert check.returncode == 0, out[-4000:]
            assert token not in out
            scenario = run(
                [
                    *paychaos,
                    "run",
                    "scenarios/db-latency.yaml",
                    "--target",
                    "targets/compose.yaml",
                    "--no-progress",
                    "--reports-dir",
                    str(state / "reports"),
                ],
                env,
                600,
            )
            out = scenario.stdout + scenario.stderr
            print(scenario.stdout)
            assert scenario.returncode == 0, out[-6000:]
            (report_file,) = (state / "reports").glob("*/report.json")
            report = json.loads(report_file.read_text())
            assert [(r["scenario"], r["status"]) for r in report["runs"]] == [
                ("db-latency", "passed")
            ]
        finally:
            down = run([*base, "down", "-v", "--remove-orphans"], env, 300)
            left = client.containers.list(
                all=True, filters={"label": f"com.docker.compose.project={project}"}
            )
            volumes = client.volumes.list(
                filters={"label": f"com.docker.compose.project={project}"}
            )
            shutil.rmtree(state, ignore_errors=True)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not left, f"containers left behind: {[c.name for c in left]}"
        assert not volumes, f"volumes left behind: {[v.name for v in volumes]}"
