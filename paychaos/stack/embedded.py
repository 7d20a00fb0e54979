"""The embedded stack: every component as a local process on 127.0.0.1, no Docker.

Start order and wiring (arrows are network paths; ``proxy`` is the fault proxy)::

    collector ◄── OTLP traces (and NestJS's logs), Faro RUM, Alertmanager webhooks;
              reads the API's and the gateway's JSON log files (logs/api.log, logs/gateway.log)
    postgres  ◄── proxy:postgres ◄── payment API ──► proxy:gateway ──► gateway
    prometheus ── scrapes api, gateway, collector, proxy, instance, itself, alertmanager
    alertmanager ──► collector /alertmanager/webhook

Example::

    with EmbeddedStack(StackConfig(state_dir=Path(".paychaos"), ports=StackPorts.auto())) as st:
        print(st.urls["api"])
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from prometheus_client import start_http_server

from paychaos.contracts.errors import InvalidInput
from paychaos.contracts.layout import SOURCE_ROOT
from paychaos.contracts.release import RELEASE_FILE_ENV, RELEASE_FILE_NAME
from paychaos.contracts.target import Processes, Target
from paychaos.stack import postgres
from paychaos.stack.api.leak import TOKEN_ENV as LEAK_TOKEN_ENV
from paychaos.stack.gateway.app import ADMIN_TOKEN_ENV
from paychaos.stack.gateway.app import SERVICE_NAME as GATEWAY_SERVICE
from paychaos.stack.instance import HostInstance, InstanceProbe, instance_registry
from paychaos.stack.process import ProcessSpec, RestartPolicy
from paychaos.stack.sdk_metrics import OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED
from paychaos.stack.service import reserve_free_port
from paychaos.stack.state import (
    ComponentState,
    StackEvent,
    StackState,
    Status,
    admin_token_file,
    state_path,
    write_state,
)
from paychaos.stack.supervisor import ChildSetup, EventSink, Supervisor
from paychaos.stack.telemetry import OTEL_LOGS_EXPORTER
from paychaos.stack.topology import builtin_target, proxy_config

REPO_ROOT = SOURCE_ROOT


@dataclass(frozen=True)
class StackPorts:
    """Loopback ports of every component (defaults are the tools' usual ones)."""

    api: int = 8000
    gateway: int = 8101
    collector: int = 4318
    postgres: int = 15432
    proxy: int = 8474
    proxy_postgres: int = 15433
    proxy_gateway: int = 8102
    prometheus: int = 9090
    alertmanager: int = 9093
    instance: int = 9101
    webapp: int = 8080

    @classmethod
    def auto(cls) -> StackPorts:
        """Free ports for every component, reserved against other stacks (what tests use)."""
        return cls(**{item.name: reserve_free_port() for item in fields(cls)})

    @classmethod
    def from_base(cls, base: int) -> StackPorts:
        """Consecutive ports from ``base`` (``--port-base 20000``)."""
        return cls(**{item.name: base + i for i, item in enumerate(fields(cls))})


@dataclass(frozen=True)
class StackConfig:
    """How to run the embedded stack."""

    state_dir: Path
    ports: StackPorts = field(default_factory=StackPorts)
    scrape_interval_s: float = 5.0
    tracing: bool = True
    gateway_latency_scale: float = 1.0
    gateway_seed: int | None = None
    gateway_timeout_s: float = 2.0
    with_proxy: bool = True
    with_monitoring: bool = True
    restart: RestartPolicy = "unless-stopped"
    python: str = sys.executable
    extra_env: tuple[tuple[str, str], ...] = ()
    webapp: bool = False
    """Serve the React checkout page (stack/webapp, built by ``make webapp``) too."""
    app: str = "python"
    """The payment API: ``python`` (paychaos' own) or ``nestjs`` (the seed's, ``stack/nestjs``)."""
    logs_by_file: bool = True
    """The Python services' logs reach the collector from the JSON lines the supervisor
    writes to ``<state>/logs/<name>.log`` (the strategy's Option A: a collector tailing
    files), not as OTLP log records exported from each service's own process."""

    def with_ports(self, ports: StackPorts) -> StackConfig:
        return replace(self, ports=ports)


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def stack_urls(cfg: StackConfig) -> dict[str, str]:
    p = cfg.ports
    urls = {
        "api": _url(p.api),
        "gateway": _url(p.gateway),
        "collector": _url(p.collector),
        "postgres": postgres.dsn(p.postgres),
        "instance_metrics": _url(p.instance) + "/metrics",
    }
    if cfg.with_proxy:
        urls["proxy"] = _url(p.proxy)
    if cfg.with_monitoring:
        urls["prometheus"] = _url(p.prometheus)
        urls["alertmanager"] = _url(p.alertmanager)
    if cfg.webapp:
        urls["webapp"] = _url(p.webapp)
    return urls


def embedded_target(cfg: StackConfig, urls: Mapping[str, str], cgroup: str | None) -> Target:
    """The :class:`Target` of an embedded stack run with ``cfg``."""
    from paychaos.stack.monitoring.config import AlertmanagerSettings

    state = cfg.state_dir.resolve()
    return builtin_target(
        "embedded",
        urls,
        token_file=admin_token_file(state),
        scrape_interval_s=cfg.scrape_interval_s,
        group_wait_s=AlertmanagerSettings(webhook_url=urls["collector"]).group_wait_s,
        tracing=cfg.tracing,
        state_dir=state,
        processes=Processes(state_file=state_path(state)),
        cgroup=Path(cgroup) if cgroup else None,
        app=cfg.app,
    )


def _python_service(cfg: StackConfig, name: str, module: str, port: int, *args: str) -> ProcessSpec:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": _url(cfg.ports.collector),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(REPO_ROOT),
        **dict(cfg.extra_env),
    }
    if not cfg.tracing:
        env["OTEL_SDK_DISABLED"] = "true"
    return ProcessSpec(
        name=name,
        argv=(cfg.python, "-m", module, "--host", "127.0.0.1", "--port", str(port), *args),
        env=env,
        cwd=str(REPO_ROOT),
        health_url=_url(port) + "/healthz",
        port=port,
        restart=cfg.restart,
    )


def _nestjs_api(cfg: StackConfig, database_url: str, gateway_url: str) -> ProcessSpec:
    """The seed's NestJS payment service as the ``api`` component (its build checked first)."""
    from paychaos.stack import nestjs_app

    node = nestjs_app.require_build()
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": _url(cfg.ports.collector),
        # the deploy fault's release file, read at start as the Python API does
        RELEASE_FILE_ENV: str(cfg.state_dir.resolve() / RELEASE_FILE_NAME),
        **dict(cfg.extra_env),
    }
    if not cfg.tracing:
        env["OTEL_SDK_DISABLED"] = "true"
    return nestjs_app.process_spec(
        node,
        port=cfg.ports.api,
        database_url=database_url,
        gateway_url=gateway_url,
        gateway_timeout_s=cfg.gateway_timeout_s,
        env=env,
        restart=cfg.restart,
        # the checkout page calls the API from its own origin (CORS, with traceparent)
        cors_origins=(_url(cfg.ports.webapp),) if cfg.webapp else (),
    )


def build_specs(cfg: StackConfig) -> list[ProcessSpec]:
    """Every component's process, in start order."""
    from paychaos.stack.nestjs_app import APPS

    if cfg.app not in APPS:
        raise InvalidInput(f"app: {cfg.app!r} is not one of {', '.join(APPS)}")
    p = cfg.ports
    state = cfg.state_dir.resolve()
    specs: list[ProcessSpec] = []
    # services whose JSON log file the collector reads (their OTLP log export is off)
    by_file: tuple[str, ...] = ()
    if cfg.logs_by_file:
        by_file = ("api", "gateway") if cfg.app == "python" else ("gateway",)
    services = {"api": "payment-api", "gateway": GATEWAY_SERVICE}  # as their OTLP records say
    follow = [f"--follow-log={services[n]}={state / 'logs' / f'{n}.log'}" for n in by_file]
    collector = _python_service(
        cfg,
        "collector",
        "paychaos.stack.collector",
        p.collector,
        "--db",
        str(state / "collector.sqlite3"),
        *follow,
    )
    specs.append(replace(collector, env={**collector.env, "OTEL_SDK_DISABLED": "true"}))
    specs.append(postgres.process_spec(postgres.data_dir_for(state), p.postgres))
    gateway_args = [
        "--ledger",
        str(state / "gateway-ledger.jsonl"),
        "--latency-scale",
        str(cfg.gateway_latency_scale),
    ]
    if cfg.gateway_seed is not None:
        gateway_args += ["--seed", str(cfg.gateway_seed)]
    token = admin_token_file(state, create=True).read_text().strip()
    gateway = _python_service(cfg, "gateway", "paychaos.stack.gateway", p.gateway, *gateway_args)
    # secrets go by environment, never on a command line (``ps`` shows those)
    specs.append(replace(gateway, env={**gateway.env, ADMIN_TOKEN_ENV: token}))
    if "gateway" in by_file:
        specs[-1] = replace(specs[-1], env={OTEL_LOGS_EXPORTER: "none", **specs[-1].env})
    db_port, gateway_port = p.postgres, p.gateway
    if cfg.with_proxy:
        proxies = proxy_config(p)
        config_path = state / "proxies.json"
        config_path.write_text(json.dumps(proxies, indent=2))
        proxy = _python_service(
            cfg, "proxy", "paychaos.chaos.proxy", p.proxy, "--config", str(config_path)
        )
        specs.append(replace(proxy, env={**proxy.env, "OTEL_SDK_DISABLED": "true"}))
        db_port, gateway_port = p.proxy_postgres, p.proxy_gateway
    # the app-leak fault's hook; the SDK's own metrics (spans and logs it failed to deliver)
    # and the release file the deploy fault writes
    api_env = {
        LEAK_TOKEN_ENV: token,
        OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED: "true",
        RELEASE_FILE_ENV: str(state / RELEASE_FILE_NAME),
    }
    if cfg.app == "nestjs":
        specs.append(_nestjs_api(cfg, postgres.dsn(db_port), _url(gateway_port)))
    else:
        specs.append(
            _python_service(
                cfg,
                "api",
                "paychaos.stack.api",
                p.api,
                "--database-url",
                postgres.dsn(db_port),
                "--gateway-url",
                _url(gateway_port),
                "--gateway-timeout-s",
                str(cfg.gateway_timeout_s),
                # the checkout page calls the API from its own origin (CORS, with traceparent)
                *(("--cors-origin", _url(p.webapp)) if cfg.webapp else ()),
            )
        )
        specs[-1] = replace(specs[-1], env={**specs[-1].env, **api_env})
        if "api" in by_file:
            specs[-1] = replace(specs[-1], env={OTEL_LOGS_EXPORTER: "none", **specs[-1].env})
    if cfg.webapp:
        specs.append(_webapp_spec(cfg))
    if cfg.with_monitoring:
        specs.extend(_monitoring_specs(cfg, state))
    return specs


def _webapp_spec(cfg: StackConfig) -> ProcessSpec:
    """The checkout page's server; refuses to start without a built page."""
    from paychaos.stack.webapp import require_built

    require_built()
    p = cfg.ports
    spec = _python_service(
        cfg,
        "webapp",
        "paychaos.stack.webapp",
        p.webapp,
        "--api-url",
        _url(p.api),
        "--collector-url",
        _url(p.collector),
    )
    return replace(spec, env={**spec.env, "OTEL_SDK_DISABLED": "true"})


def _monitoring_specs(cfg: StackConfig, state: Path) -> list[ProcessSpec]:
    from paychaos.stack.monitoring.config import (
        AlertmanagerSettings,
        PrometheusSettings,
        ScrapeTarget,
        render_alertmanager_config,
        render_prometheus_config,
        write_config,
    )
    from paychaos.stack.monitoring.processes import alertmanager_spec, prometheus_spec

    p = cfg.ports
    targets = [
        ScrapeTarget("payment-api", "127.0.0.1", p.api),
        ScrapeTarget("gateway", "127.0.0.1", p.gateway),
        ScrapeTarget("collector", "127.0.0.1", p.collector),
        ScrapeTarget("instance", "127.0.0.1", p.instance),
        ScrapeTarget("prometheus", "127.0.0.1", p.prometheus),
        ScrapeTarget("alertmanager", "127.0.0.1", p.alertmanager),
    ]
    if cfg.with_proxy:
        targets.append(ScrapeTarget("fault-proxy", "127.0.0.1", p.proxy))
    prom_yml = write_config(
        render_prometheus_config(
            PrometheusSettings(
                targets=tuple(targets),
                alertmanager_port=p.alertmanager,
                scrape_interval_s=cfg.scrape_interval_s,
                evaluation_interval_s=cfg.scrape_interval_s,
            )
        ),
        state / "prometheus.yml",
    )
    am_yml = write_config(
        render_alertmanager_config(
            AlertmanagerSettings(webhook_url=_url(p.collector) + "/alertmanager/webhook")
        ),
        state / "alertmanager.yml",
    )
    (state / "alertmanager-data").mkdir(parents=True, exist_ok=True)
    (state / "prometheus-data").mkdir(parents=True, exist_ok=True)
    return [
        replace(
            alertmanager_spec(am_yml, state / "alertmanager-data", p.alertmanager),
            restart=cfg.restart,
        ),
        replace(
            prometheus_spec(prom_yml, state / "prometheus-data", p.prometheus),
            restart=cfg.restart,
        ),
    ]


class EmbeddedStack:
    """The whole embedded stack, started and stopped as one."""

    name = "embedded"

    def __init__(
        self,
        cfg: StackConfig,
        *,
        on_event: EventSink | None = None,
        instance: InstanceProbe | None = None,
        extra_specs: Sequence[ProcessSpec] = (),
        child_setup: ChildSetup | None = None,
    ) -> None:
        """``extra_specs`` start after the built-in components; ``child_setup`` is
        passed to the :class:`Supervisor` (e.g. to start components in a cgroup)."""
        self.cfg = cfg
        self.urls = stack_urls(cfg)
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self.holder_pid = os.getpid()
        self.started_at = time.time()
        self.status: Status = "starting"
        self.events: list[StackEvent] = []
        self._on_event = on_event
        self.supervisor = Supervisor(
            [*build_specs(cfg), *extra_specs],
            cfg.state_dir / "logs",
            on_event=self._event,
            child_setup=child_setup,
        )
        self.instance = instance or HostInstance(self._root_pids)
        self._metrics_server: Any = None

    def _event(self, kind: str, message: str) -> None:
        self.events.append(StackEvent(ts=time.time(), kind=kind, message=message))
        if self._on_event is not None:
            self._on_event(kind, message)
        with contextlib.suppress(OSError):
            self.record(self.status)  # a restart changes a pid: keep the file true

    def _root_pids(self) -> list[int]:
        from paychaos.chaos.exporter import active_hog_pids  # memory hogs run on the instance too

        pids = [comp.pid for comp in self.supervisor.components.values() if comp.pid]
        return pids + active_hog_pids(self.cfg.state_dir)

    def _component_rows(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "alive": comp.alive, "restarts": comp.restarts}
            for name, comp in self.supervisor.components.items()
        ]

    def start(self) -> None:
        registry = instance_registry(self.instance, self._component_rows)
        from paychaos.chaos.exporter import (
            FaultJournalCollector,  # process/memory faults' MELT event
        )

        registry.register(FaultJournalCollector(self.cfg.state_dir))
        self._metrics_server, _ = start_http_server(
            self.cfg.ports.instance, addr="127.0.0.1", registry=registry
        )
        self.record("starting")
        try:
            self.supervisor.start()
        except BaseException as exc:
            self._stop_metrics()
            with contextlib.suppress(OSError):
                self.record("failed", error=str(exc))
            raise
        self.record("running")

    def _stop_metrics(self) -> None:
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.record("stopping")
        try:
            self.supervisor.stop()
        finally:
            self._stop_metrics()
            with contextlib.suppress(OSError):
                self.record("stopped")

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> dict[str, Any]:
        """What ``paychaos status`` shows."""
        return {
            "urls": self.urls,
            "ports": asdict(self.cfg.ports),
            "state_dir": str(self.cfg.state_dir.resolve()),
            "components": {n: c.model_dump() for n, c in self._components().items()},
        }

    def _components(self) -> dict[str, ComponentState]:
        return {
            name: ComponentState(
                pid=comp.pid,
                argv=tuple(comp.spec.argv),
                port=comp.spec.port,
                restarts=comp.restarts,
                exits=len(comp.exits),
            )
            for name, comp in self.supervisor.components.items()
        }

    def target(self) -> Target:
        """This stack as a :class:`~paychaos.contracts.target.Target` (what every command uses)."""
        return embedded_target(self.cfg, self.urls, getattr(self.instance, "cgroup_path", None))

    def record(self, status: Status, *, error: str | None = None) -> None:
        """Write the typed state file (``stack.json``) for every other command to find."""
        self.status = status
        write_state(
            StackState(
                backend="embedded",
                status=status,
                pid=self.holder_pid,
                started_at=self.started_at,
                updated_at=time.time(),
                state_dir=self.cfg.state_dir.resolve(),
                target=self.target(),
                components=self._components(),
                events=tuple(self.events[-50:]),
                error=error,
            )
        )
