"""The Docker backend's pure parts: container specs, rendered configs, the fault catalog,
cgroup lookup, the image build context — no engine needed."""

from __future__ import annotations

import io
import tarfile

import pytest
import yaml

from paychaos.chaos.catalog import RegistryFaultCatalog, docker_registry
from paychaos.chaos.docker_faults import (
    DockerMemoryLimit,
    DockerPause,
    container_cgroup_dir,
    container_name,
)
from paychaos.chaos.target import FaultTarget
from paychaos.cli import build_parser
from paychaos.contracts.errors import FaultInjectionFailed, InvalidFault
from paychaos.stack.backends.base import StackBackend
from paychaos.stack.backends.docker import (
    DockerStack,
    DockerStackConfig,
    container_specs,
    write_configs,
)
from paychaos.stack.backends.images import build_context
from paychaos.stack.embedded import StackPorts


def config(tmp_path) -> DockerStackConfig:
    return DockerStackConfig(state_dir=tmp_path, ports=StackPorts.from_base(30000), project="t")


def test_specs_wire_the_api_through_the_proxy_on_host_network(tmp_path):
    cfg = config(tmp_path)
    specs = {s.component: s for s in container_specs(cfg, tmp_path / "docker", "tok-secret")}
    assert list(specs) == [
        "collector", "postgres", "gateway", "proxy", "api", "alertmanager", "prometheus",
    ]  # fmt: skip
    api = specs["api"]
    p = cfg.ports
    assert f"postgresql://postgres@127.0.0.1:{p.proxy_postgres}/postgres" in api.command
    assert f"http://127.0.0.1:{p.proxy_gateway}" in api.command
    kwargs = api.run_kwargs(cfg)
    assert kwargs["network_mode"] == "host" and kwargs["name"] == "t-api"
    assert kwargs["labels"] == {"paychaos.project": "t", "paychaos.component": "api"}
    assert kwargs["restart_policy"] == {"Name": "unless-stopped"}
    assert specs["collector"].environment["OTEL_SDK_DISABLED"] == "true"
    # the admin token goes by environment, never on a command line
    assert "tok-secret" not in " ".join(specs["gateway"].command + specs["api"].command)
    assert specs["gateway"].environment["PAYCHAOS_GATEWAY_ADMIN_TOKEN"] == "tok-secret"
    assert specs["api"].environment["PAYCHAOS_API_ADMIN_TOKEN"] == "tok-secret"
    limited = DockerStackConfig(state_dir=tmp_path, memory_limits_mb={"api": 256})
    assert api.run_kwargs(limited)["mem_limit"] == "256m"


def test_configs_scrape_every_component_and_mount_the_rules(tmp_path):
    cfg = config(tmp_path)
    write_configs(cfg, tmp_path)
    prom = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    assert prom["rule_files"] == ["/etc/paychaos/rules/*.yml"]
    jobs = {job["job_name"] for job in prom["scrape_configs"]}
    assert {"payment-api", "gateway", "collector", "fault-proxy", "prometheus"} <= jobs
    am = yaml.safe_load((tmp_path / "alertmanager.yml").read_text())
    assert str(cfg.ports.collector) in yaml.safe_dump(am)
    assert (tmp_path / "proxies.json").exists()


def test_backends_satisfy_the_interface(tmp_path):
    assert isinstance(DockerStack(config(tmp_path), client=object()), StackBackend)
    from paychaos.stack.backends.embedded import EmbeddedBackend
    from paychaos.stack.embedded import StackConfig

    assert isinstance(EmbeddedBackend(StackConfig(state_dir=tmp_path)), StackBackend)


def test_catalog_swaps_process_faults_for_container_faults():
    catalog = RegistryFaultCatalog(docker_registry())
    names = set(catalog.names())
    assert {"kill", "pause", "restart", "docker-memory-limit", "docker-memory-hog"} <= names
    assert {"db-latency", "gateway-errors"} & names  # network/gateway faults unchanged
    prepared = catalog.validate("pause", {"component": "gateway"}, duration_s=10)
    assert isinstance(prepared, DockerPause) and prepared.target_label() == "container/gateway"
    with pytest.raises(InvalidFault):
        catalog.validate("docker-memory-limit", {"component": "api", "limit_mb": 1}, 10)


def test_container_lookup_names_the_known_containers(tmp_path):
    from paychaos.contracts.target import Docker

    target = FaultTarget(bare_target(tmp_path, docker=Docker(containers={"api": "t-api"})))
    assert container_name(target, "api") == "t-api"
    with pytest.raises(InvalidFault, match="containers: api"):
        container_name(target, "gateway")
    bare = FaultTarget(bare_target(tmp_path))
    with pytest.raises(InvalidFault, match="the target has no docker actuator"):
        DockerMemoryLimit.prepare({"component": "api"}, 10).check(bare)


def test_cgroup_dir_of_v1_and_v2(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "cgroup").write_text("5:cpu:/docker/abc\n4:memory:/docker/abc\n")
    assert str(container_cgroup_dir(1, tmp_path)) == "/sys/fs/cgroup/memory/docker/abc"
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "cgroup").write_text("0::/system.slice/docker-abc.scope\n")
    assert str(container_cgroup_dir(2, tmp_path)) == "/sys/fs/cgroup/system.slice/docker-abc.scope"
    with pytest.raises(FaultInjectionFailed):
        container_cgroup_dir(3, tmp_path)


def test_build_context_holds_only_what_the_dockerfiles_copy(tmp_path):
    ca = tmp_path / "ca"
    ca.mkdir()
    (ca / "corp.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    with tarfile.open(fileobj=build_context("app.Dockerfile", extra_ca_dir=ca)) as tar:
        names = tar.getnames()
    assert "Dockerfile" in names and "pyproject.toml" in names
    assert "paychaos/stack/docker/extra-ca/host-corp.crt" in names
    assert not any(n.startswith((".venv", ".paychaos", ".git")) for n in names)
    assert not any("__pycache__" in n for n in names)
    assert isinstance(build_context("postgres.Dockerfile", extra_ca_dir=None), io.BytesIO)


def test_cli_up_takes_a_backend():
    parser = build_parser()
    assert parser.parse_args(["up", "--backend", "docker"]).backend == "docker"
    assert parser.parse_args(["up"]).backend == "embedded"
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["up", "--backend", "kubernetes"])
    assert exc.value.code == 2


def bare_target(tmp_path, **actuators):
    """A target with nothing but ``actuators`` (a checkout URL that is never called)."""
    from paychaos.contracts.target import Actuators, Checkout, Target

    return Target(
        name="bare",
        checkout=Checkout(url="http://127.0.0.1:9"),
        actuators=Actuators(**actuators),
        state_dir=tmp_path,
    )
