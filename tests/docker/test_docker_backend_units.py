"""The Docker backend's pure parts: container specs, rendered configs, the fault catalog,
cgroup lookup, the image build context — no engine needed."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import yaml

from paychaos.chaos.catalog import RegistryFaultCatalog, docker_registry
from paychaos.chaos.docker_faults import (
    DockerCrash,
    DockerKill,
    DockerMemoryLimit,
    DockerPause,
    _in_container,
    container_cgroup_dir,
    container_name,
)
from paychaos.chaos.target import FaultTarget
from paychaos.cli import build_parser
from paychaos.contracts.errors import FaultInjectionFailed, InvalidFault, InvalidInput, StackError
from paychaos.stack.backends.base import StackBackend
from paychaos.stack.backends.docker import (
    DockerStack,
    DockerStackConfig,
    container_specs,
    engine_access,
    instance_spec,
    write_configs,
)
from paychaos.stack.backends.docker_instance import (
    Snapshot,
    StackOomKills,
    build_registry,
    container_rows,
    memory_cgroup_of,
    oom_kills_in,
)
from paychaos.stack.backends.images import build_context, context_digest
from paychaos.stack.embedded import StackPorts


def config(tmp_path) -> DockerStackConfig:
    return DockerStackConfig(state_dir=tmp_path, ports=StackPorts.from_base(30000), project="t")


def test_specs_wire_the_api_through_the_proxy_on_host_network(tmp_path):
    cfg = config(tmp_path)
    specs = {s.component: s for s in container_specs(cfg, tmp_path / "docker", "tok-secret")}
    assert list(specs) == [
        "collector", "postgres", "gateway", "proxy", "api", "alertmanager", "prometheus",
        "instance",
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


def test_the_nestjs_app_runs_in_its_own_image_with_the_apis_wiring(tmp_path):
    cfg = DockerStackConfig(
        state_dir=tmp_path, ports=StackPorts.from_base(30000), project="t", app="nestjs"
    )
    specs = {s.component: s for s in container_specs(cfg, tmp_path / "docker", "tok-secret")}
    api, p = specs["api"], cfg.ports
    assert api.image == cfg.images.nestjs and api.image != specs["gateway"].image
    assert api.command[:2] == ("node", "dist/main.js")
    assert f"postgresql://postgres@127.0.0.1:{p.proxy_postgres}/postgres" in api.command
    assert f"http://127.0.0.1:{p.proxy_gateway}" in api.command
    assert api.environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://127.0.0.1:{p.collector}"
    assert api.environment["OTEL_SERVICE_NAME"] == "payment-api"
    assert api.health_url == f"http://127.0.0.1:{p.api}/healthz"
    # no leak hook in the NestJS service: the token goes only to the gateway's environment
    assert "tok-secret" not in " ".join(api.command) + " ".join(api.environment.values())
    assert specs["gateway"].environment["PAYCHAOS_GATEWAY_ADMIN_TOKEN"] == "tok-secret"
    untraced = DockerStackConfig(state_dir=tmp_path, app="nestjs", tracing=False)
    untraced_api = next(s for s in container_specs(untraced, tmp_path) if s.component == "api")
    assert untraced_api.environment["OTEL_SDK_DISABLED"] == "true"
    target = DockerStack(cfg).target()
    offered = target.capabilities()
    assert "api.leak" not in offered and "container.api" in offered
    assert "NestJS" in target.description
    python_target = DockerStack(config(tmp_path)).target()
    assert "api.leak" in python_target.capabilities()
    with pytest.raises(InvalidInput, match="app"):
        container_specs(DockerStackConfig(state_dir=tmp_path, app="go"), tmp_path)


def test_the_checkout_page_is_served_from_the_hosts_build_with_cors_on_the_api(
    tmp_path, monkeypatch
):
    import paychaos.stack.webapp as webapp

    dist = tmp_path / "dist"
    monkeypatch.setattr(webapp, "DIST_DIR", dist)
    for app in ("python", "nestjs"):
        cfg = DockerStackConfig(
            state_dir=tmp_path, ports=StackPorts.from_base(30000), app=app, webapp=True
        )
        with pytest.raises(StackError, match="make webapp"):
            container_specs(cfg, tmp_path)  # not built: refused before anything starts
    dist.mkdir()
    (dist / "index.html").write_text("<html></html>")
    (dist / "app.js").write_text("")
    for app in ("python", "nestjs"):
        cfg = DockerStackConfig(
            state_dir=tmp_path, ports=StackPorts.from_base(30000), app=app, webapp=True
        )
        specs = container_specs(cfg, tmp_path)
        names = [s.component for s in specs]
        assert names.index("webapp") == names.index("api") + 1
        page = specs[names.index("webapp")]
        p = cfg.ports
        assert page.volumes == {str(dist.resolve()): {"bind": "/webapp", "mode": "ro"}}
        assert f"http://127.0.0.1:{p.collector}" in page.command
        api = specs[names.index("api")]
        assert api.command[api.command.index("--cors-origin") + 1] == f"http://127.0.0.1:{p.webapp}"
        assert DockerStack(cfg).urls["webapp"] == f"http://127.0.0.1:{p.webapp}"


def test_configs_scrape_every_component_and_mount_the_rules(tmp_path):
    cfg = config(tmp_path)
    write_configs(cfg, tmp_path)
    prom = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    assert prom["rule_files"] == ["/etc/paychaos/rules/*.yml"]
    jobs = {job["job_name"] for job in prom["scrape_configs"]}
    assert {"payment-api", "gateway", "collector", "fault-proxy", "prometheus", "instance"} <= jobs
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
    assert {"docker-crash", "docker-kill"} <= names
    # kill is a crash the restart policy repairs, as on processes; docker-kill an outage
    assert isinstance(catalog.validate("kill", {"component": "api"}, 10), DockerCrash)
    assert isinstance(catalog.validate("docker-kill", {"component": "api"}, 10), DockerKill)
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


def test_instance_exporter_sees_the_host_the_engine_and_the_journal(tmp_path):
    cfg = DockerStackConfig(
        state_dir=tmp_path,
        ports=StackPorts.from_base(30000),
        project="t",
        docker_host="unix:///run/x.sock",
    )
    spec = instance_spec(cfg)
    kwargs = spec.run_kwargs(cfg)
    assert kwargs["pid_mode"] == "host" and kwargs["network_mode"] == "host"
    assert f"127.0.0.1:{cfg.ports.instance}" in (spec.health_url or "")
    assert kwargs["volumes"]["/run/x.sock"]["bind"] == "/var/run/docker.sock"
    journal = kwargs["volumes"][str(tmp_path.resolve() / "chaos")]
    assert journal == {"bind": "/state/chaos", "mode": "ro"}
    assert spec.environment["DOCKER_HOST"] == "unix:///var/run/docker.sock"
    assert "--project" in spec.command and "t" in spec.command
    assert kwargs["cgroupns"] == "host"  # container cgroups by their host paths
    assert kwargs["volumes"]["/sys/fs/cgroup"] == {"bind": "/host/cgroup", "mode": "ro"}
    # a TCP engine is named as it is, nothing mounted
    assert engine_access("tcp://127.0.0.1:2375") == ({"DOCKER_HOST": "tcp://127.0.0.1:2375"}, {})


class FakeApi:
    """The two engine calls the exporter makes, for three containers of two projects."""

    def __init__(self):
        self.calls = 0
        self.items = {
            "a": ({"paychaos.project": "t", "paychaos.component": "api"}, 11, True, 2),
            "i": ({"paychaos.project": "t", "paychaos.component": "instance"}, 12, True, 0),
            "g": ({"paychaos.project": "t", "paychaos.component": "gateway"}, 0, False, 0),
        }

    def containers(self, all, filters):
        self.calls += 1
        assert all and filters == {"label": "paychaos.project=t"}
        return [{"Id": key, "Labels": labels} for key, (labels, *_rest) in self.items.items()]

    def inspect_container(self, key):
        _labels, pid, running, restarts = self.items[key]
        return {"State": {"Pid": pid, "Running": running}, "RestartCount": restarts}


def test_instance_exporter_rows_and_snapshot():
    api = FakeApi()
    client = type("Client", (), {"api": api})()
    rows = container_rows(client, "t")
    assert [(r.component, r.pid, r.running, r.restarts) for r in rows] == [
        ("api", 11, True, 2),
        ("gateway", 0, False, 0),
    ]  # the exporter's own container is not a component
    snapshot = Snapshot(lambda: container_rows(client, "t"), max_age_s=60)
    snapshot.rows()
    snapshot.rows()
    assert api.calls == 2  # one engine round per scrape, not one per series


def test_instance_exporter_exports_the_embedded_series(tmp_path):
    import os

    from prometheus_client import generate_latest

    api = FakeApi()
    api.items["a"] = (api.items["a"][0], os.getpid(), True, 3)  # a live process to measure
    client = type("Client", (), {"api": api})()
    text = generate_latest(build_registry(client, "t", tmp_path, cgroup_mount=tmp_path)).decode()
    assert 'paychaos_component_restarts_total{component="api"} 3.0' in text
    assert 'paychaos_component_up{component="gateway"} 0.0' in text
    used = next(
        float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("instance_memory_used_bytes ")
    )
    assert used > 1_000_000  # this process's resident memory
    assert "instance_oom_kills_total" in text and "chaos_fault_active" in text


def cgroup_tree(tmp_path, version: int):
    """A fake /proc (pids 11, 12) and host cgroup tree with OOM-kill counters."""
    proc, mount = tmp_path / "proc", tmp_path / "cgroup"
    base = mount / "memory" if version == 1 else mount
    counters = "memory.oom_control" if version == 1 else "memory.events"
    for pid, group in ((11, "docker/aaa"), (12, "docker/bbb")):
        (proc / str(pid)).mkdir(parents=True)
        line = f"4:memory:/{group}" if version == 1 else f"0::/{group}"
        (proc / str(pid) / "cgroup").write_text(f"1:cpu:/x\n{line}\n")
        (base / group).mkdir(parents=True)
        (base / group / counters).write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    return proc, mount, base, counters


@pytest.mark.parametrize("version", [1, 2])
def test_stack_oom_kills_count_the_stacks_cgroups_only_and_never_go_down(tmp_path, version):
    proc, mount, base, counters = cgroup_tree(tmp_path, version)
    hog = base / "paychaos-hog-x-1"
    hogs: list[tuple[Path, int]] = []
    oom = StackOomKills(lambda: [11, 12], lambda: hogs, mount=mount, proc=proc)
    assert oom.total() == 0
    (base / "docker/aaa" / counters).write_text("oom_kill 2\n")
    assert oom.total() == 2
    hog.mkdir()
    (hog / counters).write_text("oom_kill 1\n")
    hogs.append((Path("/sys/fs/cgroup") / hog.relative_to(mount), 0))  # as the journal names it
    assert oom.total() == 3
    for item in hog.iterdir():
        item.unlink()
    hog.rmdir()  # the fault ended: its cgroup is gone, its kill still counts
    assert oom.total() == 3
    # a hog whose cgroup went before any scrape: the count its watchdog recorded
    hogs.append((Path("/sys/fs/cgroup/memory/paychaos-hog-y-2"), 1))
    assert oom.total() == 4
    # an OOM kill elsewhere on the host is not this stack's
    (base / "other").mkdir()
    (base / "other" / counters).write_text("oom_kill 5\n")
    assert oom.total() == 4
    assert memory_cgroup_of(11, proc) == "/docker/aaa" and memory_cgroup_of(99, proc) is None
    assert oom_kills_in(tmp_path / "nowhere") is None


def test_docker_crash_checks_the_pid_is_the_containers(tmp_path):
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "cgroup").write_text("0::/system.slice/docker-abc123.scope\n")
    assert _in_container(7, "abc123", tmp_path)
    assert not _in_container(7, "def456", tmp_path)
    assert not _in_container(8, "abc123", tmp_path)  # not visible here: another host's engine


def test_image_digest_follows_what_the_dockerfile_copies(tmp_path):
    root = tmp_path
    (root / "paychaos").mkdir()
    (root / "paychaos" / "a.py").write_text("x = 1\n")
    (root / "paychaos" / "__pycache__").mkdir()
    (root / "paychaos" / "__pycache__" / "a.pyc").write_bytes(b"junk")
    (root / "pyproject.toml").write_text("[project]\n")
    (root / "README.md").write_text("hi\n")
    (root / "locustfiles").mkdir()
    before = context_digest("app.Dockerfile", root=root)
    (root / "paychaos" / "__pycache__" / "a.pyc").write_bytes(b"other junk")
    assert context_digest("app.Dockerfile", root=root) == before  # caches do not count
    built = root / "paychaos" / "stack" / "webapp" / "dist"
    built.mkdir(parents=True)
    (built / "app.js").write_text("bundle")
    (root / "paychaos" / "node_modules").mkdir()
    (root / "paychaos" / "node_modules" / "x.js").write_text("x")
    assert context_digest("app.Dockerfile", root=root) == before  # nor host Node builds
    (root / "paychaos" / "a.py").write_text("x = 2\n")
    assert context_digest("app.Dockerfile", root=root) != before  # code does
    assert context_digest("app.Dockerfile", "other/base:1", root=root) != context_digest(
        "app.Dockerfile", root=root
    )


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
    # a host's Node packages and builds never go: no image runs them
    assert not any("node_modules" in n or n.endswith("/dist/app.js") for n in names)
    with tarfile.open(fileobj=build_context("nestjs.Dockerfile", extra_ca_dir=None)) as tar:
        nest = set(tar.getnames())
    assert "paychaos/stack/nestjs/package-lock.json" in nest
    assert "paychaos/stack/nestjs/src/main.ts" in nest
    assert not any(n.startswith(("paychaos/stack/api", "pyproject.toml")) for n in nest)
    assert not any("node_modules" in n or "/dist/" in n for n in nest)


def test_cli_up_takes_a_backend():
    parser = build_parser()
    assert parser.parse_args(["up", "--backend", "docker"]).backend == "docker"
    assert parser.parse_args(["up", "--project", "pc-1"]).project == "pc-1"
    with pytest.raises(SystemExit):
        parser.parse_args(["up", "--project", "Bad Name"])
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
