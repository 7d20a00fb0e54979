"""What a fault acts on: a :class:`~paychaos.contracts.target.Target`'s actuators, resolved.

:class:`FaultTarget` is not another description of the stack: it is the
target's actuators made usable by faults — URLs checked against the loopback
rule (other hosts need the target's ``allow_hosts``), secrets resolved from
their references when a fault needs them (never stored), processes looked up
afresh each time (a supervisor may have restarted one since), and a directory
for the chaos journal.

Example::

    chaos = FaultTarget(target, state_dir=Path(".paychaos"))
    chaos.toxiproxy_url()            # http://127.0.0.1:8474
    chaos.proxy_for("database")      # "postgres"
    chaos.process("gateway").pid
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path

from paychaos.chaos.procs import ProcessRef
from paychaos.contracts.domain import Dependency
from paychaos.contracts.errors import FaultInjectionFailed, InvalidFault, InvalidTarget
from paychaos.contracts.target import AdminApi, Target
from paychaos.stack.service import is_loopback
from paychaos.stack.state import read_state


def check_host(url: str, allow_hosts: Iterable[str] = ()) -> None:
    """Refuse a non-loopback URL unless its host is explicitly allowed."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if is_loopback(host) or host in set(allow_hosts):
        return
    raise InvalidFault(
        f"{url} is not loopback; chaos targets loopback only unless the target's "
        f"allow_hosts lists {host} (or --allow-host {host} is given)"
    )


class FaultTarget:
    """A target's actuators as faults use them."""

    def __init__(
        self,
        target: Target,
        *,
        state_dir: Path | None = None,
        allow_hosts: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.target = target
        where = state_dir or target.state_dir
        if where is None:
            raise InvalidTarget(f"target {target.name}: no state directory for the chaos journal")
        self.state_dir = Path(where).resolve()
        self.allow_hosts = frozenset((*target.allow_hosts, *allow_hosts))
        self._environ = os.environ if environ is None else environ

    @property
    def chaos_dir(self) -> Path:
        return self.state_dir / "chaos"

    @property
    def name(self) -> str:
        return self.target.name

    def _checked(self, url: str) -> str:
        check_host(url, self.allow_hosts)
        return url

    # -- Toxiproxy ------------------------------------------------------------------
    def has_toxiproxy(self) -> bool:
        return self.target.actuators.toxiproxy is not None

    def toxiproxy_url(self) -> str:
        proxy = self.target.actuators.toxiproxy
        if proxy is None:
            raise FaultInjectionFailed(f"target {self.name} has no toxiproxy actuator")
        return self._checked(proxy.url)

    def proxy_for(self, dependency: Dependency) -> str:
        """The Toxiproxy proxy in front of ``dependency``."""
        proxy = self.target.actuators.toxiproxy
        name = proxy.proxies.get(dependency) if proxy else None
        if not name:
            raise FaultInjectionFailed(
                f"target {self.name} names no toxiproxy proxy in front of the {dependency}"
            )
        return name

    # -- admin APIs -------------------------------------------------------------------
    def _admin(self, api: AdminApi | None, what: str) -> tuple[str, str]:
        if api is None:
            raise FaultInjectionFailed(f"target {self.name} has no {what} actuator")
        if api.token is None:
            raise FaultInjectionFailed(f"target {self.name}: the {what} has no token reference")
        try:
            token = api.token.resolve(self._environ)
        except InvalidTarget as exc:
            raise FaultInjectionFailed(f"{what} token ({api.token.describe()}): {exc}") from None
        return self._checked(api.url), token

    def has_gateway_admin(self) -> bool:
        return self.target.actuators.gateway_admin is not None

    def gateway_admin(self) -> tuple[str, str]:
        """URL and token of the gateway simulator's admin API."""
        return self._admin(self.target.actuators.gateway_admin, "gateway admin API")

    def api_admin(self) -> tuple[str, str]:
        """URL and token of the payment API's admin hook (the app-leak fault)."""
        return self._admin(self.target.actuators.api_admin, "API admin hook")

    # -- processes ----------------------------------------------------------------------
    def _process_table(self) -> dict[str, tuple[int | None, tuple[str, ...]]]:
        procs = self.target.actuators.processes
        if procs is None:
            return {}
        if procs.state_file is not None:
            state = read_state(procs.state_file.parent)
            if state is None:
                raise FaultInjectionFailed(f"cannot read the stack state {procs.state_file}")
            return {n: (c.pid, c.argv) for n, c in state.components.items()}
        table: dict[str, tuple[int | None, tuple[str, ...]]] = {}
        for name, path in procs.pid_files.items():
            try:
                table[name] = (int(path.read_text().split()[0]), ())
            except (OSError, ValueError, IndexError):
                table[name] = (None, ())
        return table

    def component_names(self) -> list[str]:
        return sorted(self._process_table())

    def process(self, name: str) -> ProcessRef:
        """The running process of component ``name``, identity-checked."""
        table = self._process_table()
        if name not in table:
            known = ", ".join(sorted(table)) or "none"
            raise InvalidFault(f"no component {name!r} among the processes; components: {known}")
        pid, argv = table[name]
        if not pid:
            raise FaultInjectionFailed(f"{name} has no running process")
        return ProcessRef.of(pid, name=name, argv=argv)

    # -- Docker, cgroup ---------------------------------------------------------------------
    @property
    def instance_cgroup(self) -> str | None:
        cgroup = self.target.actuators.cgroup
        return str(cgroup) if cgroup else None

    def with_cgroup(self, cgroup: Path) -> FaultTarget:
        """The same target, its instance cgroup set to ``cgroup`` (a container's)."""
        actuators = self.target.actuators.model_copy(update={"cgroup": cgroup})
        return FaultTarget(
            self.target.model_copy(update={"actuators": actuators}),
            state_dir=self.state_dir,
            allow_hosts=self.allow_hosts,
            environ=self._environ,
        )

    def docker_host(self) -> str:
        docker = self.target.actuators.docker
        return docker.host if docker else ""

    def container(self, component: str) -> str:
        docker = self.target.actuators.docker
        containers = docker.containers if docker else {}
        if component not in containers:
            known = ", ".join(sorted(containers)) or "none (the target has no docker actuator)"
            raise InvalidFault(f"no container for component {component!r}; containers: {known}")
        return containers[component]


__all__ = ["FaultTarget", "check_host"]
