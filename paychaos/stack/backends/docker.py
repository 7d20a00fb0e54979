"""The Docker backend: the embedded stack's components as containers, via the ``docker`` SDK.

Same components, same ports and wiring as :mod:`paychaos.stack.embedded`, each in its
own container on the host network, every listener on 127.0.0.1::

    collector   paychaos/app         python -m paychaos.stack.collector
    postgres    paychaos/postgres    Debian's PostgreSQL 15
    gateway     paychaos/app         python -m paychaos.stack.gateway
    proxy       paychaos/app         python -m paychaos.chaos.proxy   (the Toxiproxy stand-in)
    api         paychaos/app         python -m paychaos.stack.api  → proxy → postgres / gateway
                (``app="nestjs"``: paychaos/nestjs, node dist/main.js, the seed's NestJS
                service, same port and wiring; image on Debian 13 for its Node.js 20)
    webapp      paychaos/app         python -m paychaos.stack.webapp  (``webapp=True``: the
                                     checkout page, the host's built dist/ mounted read-only;
                                     Faro posts to the collector)
    alertmanager, prometheus  paychaos/prometheus  (Debian's packages; rules mounted)
    instance    paychaos/app         python -m paychaos.stack.backends.docker_instance
                                     (job ``instance``: the host's pid and cgroup
                                     namespaces, the engine's socket; the host's
                                     cgroup tree and the chaos journal read-only)

Containers are named ``<project>-<component>``, labelled
``paychaos.project=<project>``, restart ``unless-stopped`` like the embedded
supervisor's policy, and removed by :meth:`DockerStack.stop` (only those with
this project's label). Images are built locally when missing
(:mod:`paychaos.stack.backends.images`).

Example::

    cfg = DockerStackConfig(state_dir=Path(".paychaos"), ports=StackPorts.auto())
    with DockerStack(cfg) as st:
        st.urls["api"]
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from paychaos.chaos.journal import journal_path
from paychaos.contracts.errors import ComponentFailed, InvalidInput, MissingDependency, StackError
from paychaos.contracts.target import Docker, Target
from paychaos.stack.api.leak import TOKEN_ENV as LEAK_TOKEN_ENV
from paychaos.stack.backends.images import ImageSet, build_all
from paychaos.stack.embedded import StackPorts
from paychaos.stack.gateway.app import ADMIN_TOKEN_ENV
from paychaos.stack.monitoring.config import (
    RULES_DIR,
    AlertmanagerSettings,
    PrometheusSettings,
    ScrapeTarget,
    render_alertmanager_config,
    render_prometheus_config,
)
from paychaos.stack.state import (
    ComponentState,
    StackState,
    Status,
    admin_token_file,
    state_path,
    write_state,
)
from paychaos.stack.topology import builtin_target, proxy_config

PROJECT_LABEL = "paychaos.project"
COMPONENT_LABEL = "paychaos.component"
#: The instance exporter's component name (a container of the stack, not a fault target).
DOCKER_INSTANCE = "instance"


@dataclass(frozen=True)
class DockerStackConfig:
    """How to run the stack on Docker (ports as in :class:`~paychaos.stack.embedded.StackPorts`)."""

    state_dir: Path
    ports: StackPorts = field(default_factory=StackPorts)
    images: ImageSet = field(default_factory=ImageSet)
    project: str = "paychaos"
    docker_host: str = ""
    scrape_interval_s: float = 5.0
    gateway_latency_scale: float = 1.0
    gateway_timeout_s: float = 2.0
    tracing: bool = True
    build_missing: bool = True
    memory_limits_mb: Mapping[str, int] = field(default_factory=dict)
    ready_timeout_s: float = 90.0
    app: str = "python"
    """The payment API: ``python`` (paychaos' own) or ``nestjs`` (the seed's NestJS service)."""
    webapp: bool = False
    """Serve the React checkout page (built on the host by ``make webapp``) too."""


@dataclass(frozen=True)
class ContainerSpec:
    """One container: what ``containers.run`` gets (host network, detached)."""

    component: str
    image: str
    command: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)
    volumes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    health_url: str | None = None
    port: int | None = None
    entrypoint: tuple[str, ...] | None = None
    pid_mode: str | None = None
    cgroupns: str | None = None

    def run_kwargs(self, cfg: DockerStackConfig) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "image": self.image,
            "command": list(self.command),
            "name": container_name(cfg.project, self.component),
            "detach": True,
            "network_mode": "host",
            "environment": dict(self.environment),
            "volumes": {k: dict(v) for k, v in self.volumes.items()},
            "labels": {PROJECT_LABEL: cfg.project, COMPONENT_LABEL: self.component},
            "restart_policy": {"Name": "unless-stopped"},
            "init": True,
        }
        if self.entrypoint is not None:
            kwargs["entrypoint"] = list(self.entrypoint)
        if self.pid_mode is not None:
            kwargs["pid_mode"] = self.pid_mode
        if self.cgroupns is not None:
            kwargs["cgroupns"] = self.cgroupns
        limit = cfg.memory_limits_mb.get(self.component)
        if limit:
            kwargs["mem_limit"] = f"{limit}m"
            kwargs["memswap_limit"] = f"{limit}m"
        return kwargs


def container_name(project: str, component: str) -> str:
    return f"{project}-{component}"


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def stack_urls(cfg: DockerStackConfig) -> dict[str, str]:
    p = cfg.ports
    return {
        "api": _url(p.api),
        "gateway": _url(p.gateway),
        "collector": _url(p.collector),
        "postgres": f"postgresql://postgres@127.0.0.1:{p.postgres}/postgres",
        "proxy": _url(p.proxy),
        "prometheus": _url(p.prometheus),
        "alertmanager": _url(p.alertmanager),
        "instance_metrics": _url(p.instance) + "/metrics",
        **({"webapp": _url(p.webapp)} if cfg.webapp else {}),
    }


def engine_access(docker_host: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """How a container reaches the engine ``docker_host``: (environment, volumes).

    A unix socket is mounted at the default path; a TCP engine is reached over
    the host network as it is named.
    """
    host = docker_host or os.environ.get("DOCKER_HOST", "") or "unix:///var/run/docker.sock"
    if host.startswith("unix://"):
        socket_path = host[len("unix://") :]
        return (
            {"DOCKER_HOST": "unix:///var/run/docker.sock"},
            {socket_path: {"bind": "/var/run/docker.sock", "mode": "rw"}},
        )
    return {"DOCKER_HOST": host}, {}


def python_spec(
    cfg: DockerStackConfig,
    component: str,
    module: str,
    port: int,
    *args: str,
    environment: Mapping[str, str],
    volumes: Mapping[str, Mapping[str, str]],
) -> ContainerSpec:
    """A service of the app image: ``python -m MODULE --host 127.0.0.1 --port PORT ARGS``,
    healthy when ``/healthz`` answers."""
    return ContainerSpec(
        component=component,
        image=cfg.images.app,
        command=("python", "-m", module, "--host", "127.0.0.1", "--port", str(port), *args),
        environment=environment,
        volumes=volumes,
        health_url=_url(port) + "/healthz",
        port=port,
    )


def container_specs(
    cfg: DockerStackConfig, config_dir: Path, admin_token: str = ""
) -> list[ContainerSpec]:
    """Every component's container, in start order (pure: files are written by the caller).

    ``admin_token`` goes to the gateway's admin API and the API's leak hook by
    environment (never on a command line); empty: both stay disabled.
    """
    p, img = cfg.ports, cfg.images
    data = {str(config_dir.resolve()): {"bind": "/data", "mode": "rw"}}
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": _url(p.collector), "PYTHONUNBUFFERED": "1"}
    if not cfg.tracing:
        otel["OTEL_SDK_DISABLED"] = "true"

    def python(component: str, module: str, port: int, *args: str) -> ContainerSpec:
        return python_spec(cfg, component, module, port, *args, environment=otel, volumes=data)

    collector = python(
        "collector", "paychaos.stack.collector", p.collector, "--db", "/data/collector.db"
    )
    collector = ContainerSpec(
        **{**asdict(collector), "environment": {**otel, "OTEL_SDK_DISABLED": "true"}}
    )
    rules = {str(RULES_DIR): {"bind": "/etc/paychaos/rules", "mode": "ro"}}
    specs = [
        collector,
        ContainerSpec(
            component="postgres",
            image=img.postgres,
            command=(),
            environment={"PGPORT": str(p.postgres), "PGHOST_LISTEN": "127.0.0.1"},
            port=p.postgres,
        ),
        python(
            "gateway",
            "paychaos.stack.gateway",
            p.gateway,
            "--ledger",
            "/data/gateway-ledger.jsonl",
            "--latency-scale",
            str(cfg.gateway_latency_scale),
        ),
        ContainerSpec(
            **{
                **asdict(
                    python(
                        "proxy", "paychaos.chaos.proxy", p.proxy, "--config", "/data/proxies.json"
                    )
                ),
                "environment": {**otel, "OTEL_SDK_DISABLED": "true"},
            }
        ),
        api_spec(cfg, otel, data),
        ContainerSpec(
            component="alertmanager",
            image=img.prometheus,
            command=(
                "prometheus-alertmanager",
                "--config.file=/data/alertmanager.yml",
                "--storage.path=/alertmanager",
                f"--web.listen-address=127.0.0.1:{p.alertmanager}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ),
            volumes=data,
            health_url=_url(p.alertmanager) + "/-/ready",
            port=p.alertmanager,
        ),
        ContainerSpec(
            component="prometheus",
            image=img.prometheus,
            command=(
                "prometheus",
                "--config.file=/data/prometheus.yml",
                "--storage.tsdb.path=/prometheus",
                f"--web.listen-address=127.0.0.1:{p.prometheus}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ),
            volumes={**data, **rules},
            health_url=_url(p.prometheus) + "/-/ready",
            port=p.prometheus,
        ),
        instance_spec(cfg),
    ]
    if cfg.webapp:
        after_api = [spec.component for spec in specs].index("api") + 1
        specs.insert(after_api, webapp_spec(cfg))
    if not admin_token:
        return specs
    # the gateway's admin API; the Python API's leak hook (the NestJS service has none)
    secret = {"gateway": ADMIN_TOKEN_ENV}
    if cfg.app == "python":
        secret["api"] = LEAK_TOKEN_ENV
    return [
        replace(s, environment={**s.environment, secret[s.component]: admin_token})
        if s.component in secret
        else s
        for s in specs
    ]


def api_spec(
    cfg: DockerStackConfig, otel: Mapping[str, str], data: Mapping[str, Mapping[str, str]]
) -> ContainerSpec:
    """The payment API's container: paychaos' own, or the seed's NestJS service."""
    from paychaos.stack.nestjs_app import APPS, SERVICE_ENV, service_args

    if cfg.app not in APPS:
        raise InvalidInput(f"app: {cfg.app!r} is not one of {', '.join(APPS)}")
    p = cfg.ports
    database_url = f"postgresql://postgres@127.0.0.1:{p.proxy_postgres}/postgres"
    # the checkout page calls the API from its own origin (CORS, with traceparent)
    cors = (_url(p.webapp),) if cfg.webapp else ()
    if cfg.app == "nestjs":
        env = {k: v for k, v in otel.items() if k != "PYTHONUNBUFFERED"}
        return ContainerSpec(
            component="api",
            image=cfg.images.nestjs,
            command=(
                "node",
                "dist/main.js",
                *service_args(
                    port=p.api,
                    database_url=database_url,
                    gateway_url=_url(p.proxy_gateway),
                    gateway_timeout_s=cfg.gateway_timeout_s,
                    cors_origins=cors,
                ),
            ),
            environment={**SERVICE_ENV, **env},
            health_url=_url(p.api) + "/healthz",
            port=p.api,
        )
    return python_spec(
        cfg,
        "api",
        "paychaos.stack.api",
        p.api,
        "--database-url",
        database_url,
        "--gateway-url",
        _url(p.proxy_gateway),
        "--gateway-timeout-s",
        str(cfg.gateway_timeout_s),
        *(arg for origin in cors for arg in ("--cors-origin", origin)),
        environment=otel,
        volumes=data,
    )


def webapp_spec(cfg: DockerStackConfig) -> ContainerSpec:
    """The checkout page's server, serving the host's built page (mounted read-only);
    the page's Faro SDK posts to the collector."""
    from paychaos.stack.webapp import require_built

    dist = require_built()
    p = cfg.ports
    return python_spec(
        cfg,
        "webapp",
        "paychaos.stack.webapp",
        p.webapp,
        "--api-url",
        _url(p.api),
        "--collector-url",
        _url(p.collector),
        "--dist",
        "/webapp",
        environment={"PYTHONUNBUFFERED": "1", "OTEL_SDK_DISABLED": "true"},
        volumes={str(dist.resolve()): {"bind": "/webapp", "mode": "ro"}},
    )


def instance_spec(cfg: DockerStackConfig) -> ContainerSpec:
    """The instance exporter (job ``instance``, :mod:`paychaos.stack.backends.docker_instance`).

    The host's pid and cgroup namespaces (to measure the containers' and the hogs'
    processes like the embedded stack does, and to find their memory cgroups),
    the engine (the containers' pids and restart counts), and read-only the
    host's cgroup tree (their OOM-kill counts) and the state directory's
    ``chaos/`` (the journal).
    """
    env, volumes = engine_access(cfg.docker_host)
    chaos = journal_dir(cfg.state_dir)
    return ContainerSpec(
        component=DOCKER_INSTANCE,
        image=cfg.images.app,
        command=(
            "python",
            "-m",
            "paychaos.stack.backends.docker_instance",
            "--host",
            "127.0.0.1",
            "--port",
            str(cfg.ports.instance),
            "--project",
            cfg.project,
            "--state-dir",
            "/state",
        ),
        environment={**env, "PYTHONUNBUFFERED": "1"},
        volumes={
            **volumes,
            str(chaos): {"bind": "/state/chaos", "mode": "ro"},
            "/sys/fs/cgroup": {"bind": "/host/cgroup", "mode": "ro"},
        },
        health_url=_url(cfg.ports.instance) + "/metrics",
        port=cfg.ports.instance,
        pid_mode="host",
        cgroupns="host",
    )


def journal_dir(state_dir: Path) -> Path:
    """The directory of the chaos journal of a stack in ``state_dir``."""
    return journal_path(state_dir.resolve()).parent


def write_configs(cfg: DockerStackConfig, config_dir: Path) -> None:
    """``proxies.json``, ``prometheus.yml`` and ``alertmanager.yml`` the containers mount."""
    p = cfg.ports
    config_dir.mkdir(parents=True, exist_ok=True)
    proxies = proxy_config(p)
    (config_dir / "proxies.json").write_text(json.dumps(proxies, indent=2))
    targets = (
        ScrapeTarget("payment-api", "127.0.0.1", p.api),
        ScrapeTarget("gateway", "127.0.0.1", p.gateway),
        ScrapeTarget("collector", "127.0.0.1", p.collector),
        ScrapeTarget("fault-proxy", "127.0.0.1", p.proxy),
        ScrapeTarget("prometheus", "127.0.0.1", p.prometheus),
        ScrapeTarget("alertmanager", "127.0.0.1", p.alertmanager),
        ScrapeTarget("instance", "127.0.0.1", p.instance),
    )
    prom = render_prometheus_config(
        PrometheusSettings(
            targets=targets,
            alertmanager_port=p.alertmanager,
            scrape_interval_s=cfg.scrape_interval_s,
            evaluation_interval_s=cfg.scrape_interval_s,
            rules_dir=None,
        )
    )
    # the rules as the container sees them (mounted read-only)
    prom = prom.rstrip("\n") + "\nrule_files:\n- /etc/paychaos/rules/*.yml\n"
    (config_dir / "prometheus.yml").write_text(prom)
    am = render_alertmanager_config(
        AlertmanagerSettings(webhook_url=_url(p.collector) + "/alertmanager/webhook")
    )
    (config_dir / "alertmanager.yml").write_text(am)


def _healthy(spec: ContainerSpec) -> bool:
    if spec.health_url is not None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(spec.health_url, timeout=2) as response:
                return bool(200 <= response.status < 300)
        except (urllib.error.URLError, OSError):
            return False
    if spec.port is not None:
        with socket.socket() as sock:
            sock.settimeout(1.0)
            return sock.connect_ex(("127.0.0.1", spec.port)) == 0
    return True


class DockerStack:
    """The stack as containers on one Docker Engine; a :class:`StackBackend`."""

    name = "docker"

    def __init__(
        self,
        cfg: DockerStackConfig,
        *,
        client: Any = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.urls: dict[str, str] = stack_urls(cfg)
        self._client = client
        self._owns_client = client is None
        self._log = log or (lambda _line: None)
        self.config_dir = cfg.state_dir.resolve() / "docker"
        self.token_file = admin_token_file(cfg.state_dir, create=True)
        self.specs = container_specs(cfg, self.config_dir, self.token_file.read_text().strip())
        self.build_seconds: dict[str, float] = {}
        self._started_at = time.time()

    # -- the engine ---------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            import docker
            import docker.errors

            try:
                self._client = (
                    docker.DockerClient(base_url=self.cfg.docker_host, timeout=120)
                    if self.cfg.docker_host
                    else docker.from_env(timeout=120)
                )
                self._client.ping()
            except docker.errors.DockerException as exc:
                raise MissingDependency(
                    f"no Docker Engine answers ({exc}); start one (stack/docker/ci-dockerd.sh "
                    "start) or set DOCKER_HOST"
                ) from exc
        return self._client

    def containers(self) -> dict[str, Any]:
        """component → container of this project (running or not)."""
        found = self.client.containers.list(
            all=True, filters={"label": f"{PROJECT_LABEL}={self.cfg.project}"}
        )
        return {c.labels.get(COMPONENT_LABEL, c.name): c for c in found}

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        import docker.errors

        if self.cfg.build_missing:
            self.build_seconds = build_all(
                self.client, self.cfg.images, nestjs=self.cfg.app == "nestjs", log=self._log
            )
        self.stop()  # leftovers of a previous run of this project
        write_configs(self.cfg, self.config_dir)
        journal_dir(self.cfg.state_dir).mkdir(parents=True, exist_ok=True)
        try:
            for spec in self.specs:
                self._log(f"starting {spec.component}")
                try:
                    self.client.containers.run(**spec.run_kwargs(self.cfg))
                except docker.errors.DockerException as exc:
                    raise ComponentFailed(spec.component, f"docker run failed: {exc}") from exc
                self._wait_healthy(spec)
            self._write_state("running")
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, spec: ContainerSpec) -> None:
        deadline = time.monotonic() + self.cfg.ready_timeout_s
        name = container_name(self.cfg.project, spec.component)
        while time.monotonic() < deadline:
            if _healthy(spec):
                return
            container = self.client.containers.get(name)
            if container.status in ("exited", "dead", "restarting") or container.attrs.get(
                "RestartCount"
            ):
                tail = container.logs(tail=20).decode(errors="replace")
                raise ComponentFailed(spec.component, f"container exited:\n{tail}")
            time.sleep(0.25)
        tail = self.client.containers.get(name).logs(tail=20).decode(errors="replace")
        raise ComponentFailed(
            spec.component, f"not healthy within {self.cfg.ready_timeout_s:g}s:\n{tail}"
        )

    def stop(self) -> None:
        import docker.errors

        for container in self.containers().values():
            try:
                container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                raise StackError(f"could not remove container {container.name}: {exc}") from exc
        if state_path(self.cfg.state_dir).exists():
            self._write_state("stopped")
        if self._owns_client and self._client is not None:
            self._client.close()  # its pooled sockets; a later call connects again
            self._client = None

    def __enter__(self) -> DockerStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- views ----------------------------------------------------------------------
    def container_pid(self, component: str) -> int | None:
        container = self.containers().get(component)
        if container is None:
            return None
        container.reload()
        pid = int((container.attrs.get("State") or {}).get("Pid") or 0)
        return pid or None

    def describe(self) -> dict[str, Any]:
        """What ``paychaos status`` shows."""
        return {
            "backend": self.name,
            "project": self.cfg.project,
            "docker_host": self.cfg.docker_host,
            "urls": self.urls,
            "ports": asdict(self.cfg.ports),
            "state_dir": str(self.cfg.state_dir.resolve()),
            "components": {n: c.model_dump() for n, c in self._components().items()},
        }

    def container_names(self) -> dict[str, str]:
        return {s.component: container_name(self.cfg.project, s.component) for s in self.specs}

    def _components(self) -> dict[str, ComponentState]:
        components: dict[str, ComponentState] = {}
        for name, container in self.containers().items():
            state = container.attrs.get("State") or {}
            components[name] = ComponentState(
                pid=state.get("Pid") or None,
                container=container.name,
                restarts=int(container.attrs.get("RestartCount") or 0),
                status=container.status,
            )
        return components

    def target(self) -> Target:
        """This stack as a :class:`~paychaos.contracts.target.Target`."""
        return builtin_target(
            "docker",
            self.urls,
            token_file=self.token_file,
            scrape_interval_s=self.cfg.scrape_interval_s,
            group_wait_s=AlertmanagerSettings(webhook_url=self.urls["collector"]).group_wait_s,
            tracing=self.cfg.tracing,
            state_dir=self.cfg.state_dir.resolve(),
            docker=Docker(host=self.cfg.docker_host, containers=self.container_names()),
            app=self.cfg.app,
        )

    def _write_state(self, status: Status) -> None:
        write_state(
            StackState(
                backend="docker",
                status=status,
                pid=os.getpid(),
                started_at=self._started_at,
                updated_at=time.time(),
                state_dir=self.cfg.state_dir.resolve(),
                target=self.target(),
                components=self._components(),
                project=self.cfg.project,
                ports=asdict(self.cfg.ports),
                app=self.cfg.app,
                webapp=self.cfg.webapp,
            )
        )


__all__ = [
    "DockerStack",
    "DockerStackConfig",
    "api_spec",
    "container_name",
    "container_specs",
    "engine_access",
    "instance_spec",
    "stack_urls",
    "webapp_spec",
    "write_configs",
]
