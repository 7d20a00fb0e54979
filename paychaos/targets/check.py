"""``paychaos target check``: probe every endpoint and actuator of a target.

Each probe answers *ok* or why not — ``unreachable``, ``not configured``,
``wrong version``, ``no permission``, ``missing`` — and every capability
inherits the answer of the probe it rests on. From that, every fault type and
expectation type is marked supported, or not with the reason.

Probes only read (a Toxiproxy ``GET /proxies``, a gateway ``GET
/admin/behaviours``, a Docker ``ping`` and ``inspect``): nothing is injected.

Example::

    report = check_target(target)
    print(render(report))
    report.supported_faults["db-latency"]      # None, or the reason it cannot run
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paychaos.checks.build import EXPECTATION_NEEDS
from paychaos.contracts.domain import COMPONENTS
from paychaos.contracts.errors import InvalidFault, InvalidTarget
from paychaos.contracts.target import CAPABILITIES, AdminApi, SignalStore, Target
from paychaos.stack.state import pid_alive, read_state

TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Probe:
    """One endpoint or actuator: ``ok`` or why not."""

    name: str
    status: str  # ok | unreachable | not configured | wrong version | no permission | missing
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class TargetReport:
    """What ``target check`` found."""

    target: Target
    probes: dict[str, Probe] = field(default_factory=dict)
    capabilities: dict[str, str | None] = field(default_factory=dict)
    """capability → None when usable, else why not."""
    faults: dict[str, str | None] = field(default_factory=dict)
    expectations: dict[str, str | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.probes.values())


# ------------------------------------------------------------------ HTTP probes


def _get(
    url: str, headers: Mapping[str, str] | None = None, *, method: str = "GET"
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=dict(headers or {}), method=method)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            return int(resp.status), resp.read(65536)
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code), exc.read(4096)


def _http(name: str, url: str, *, expect: Callable[[int, bytes], str | None]) -> Probe:
    try:
        status, body = _get(url)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Probe(name, "unreachable", f"GET {url}: {reason}")
    problem = expect(status, body)
    return Probe(name, "ok", url) if problem is None else Probe(name, "wrong version", problem)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def probe_prometheus(url: str) -> Probe:
    def expect(status: int, body: bytes) -> str | None:
        data = (_json(body) or {}).get("data") or {}
        version = str(data.get("version", ""))
        if status != 200 or not version:
            return f"{url} answered {status}, not a Prometheus build info"
        if not version.split(".")[0].isdigit() or int(version.split(".")[0]) < 2:
            return f"Prometheus {version}: 2.x or later is needed"
        return None

    return _http("prometheus", url.rstrip("/") + "/api/v1/status/buildinfo", expect=expect)


def probe_alertmanager(url: str) -> Probe:
    def expect(status: int, body: bytes) -> str | None:
        if status != 200 or not isinstance(_json(body), dict):
            return f"{url} answered {status}, not an Alertmanager v2 API"
        return None

    return _http("alertmanager", url.rstrip("/") + "/api/v2/status", expect=expect)


def probe_store(name: str, store: SignalStore) -> Probe:
    path = {"collector": "/healthz", "tempo": "/ready", "loki": "/ready"}[store.kind]

    def expect(status: int, _body: bytes) -> str | None:
        return None if status == 200 else f"{store.url}{path} answered {status}"

    probe = _http(name, store.url.rstrip("/") + path, expect=expect)
    return Probe(name, probe.status, f"{store.kind}: {probe.detail}")


def probe_checkout(target: Target) -> Probe:
    url = target.checkout.url.rstrip("/")
    if target.checkout.adapter.builtin:
        return _http(
            "checkout",
            url + "/healthz",
            expect=lambda s, _b: None if s == 200 else f"{url}/healthz answered {s}",
        )

    def any_answer(_status: int, _body: bytes) -> str | None:
        return None  # a foreign API: any HTTP answer means it is there

    return _http("checkout", url + "/", expect=any_answer)


def _admin(
    name: str, api: AdminApi, path: str, environ: Mapping[str, str], method: str = "GET"
) -> Probe:
    if api.token is None:
        return Probe(name, "not configured", "no token reference")
    try:
        token = api.token.resolve(environ)
    except InvalidTarget as exc:
        return Probe(name, "not configured", f"token {api.token.describe()}: {exc}")
    url = api.url.rstrip("/") + path
    try:
        status, _body = _get(url, {"Authorization": f"Bearer {token}"}, method=method)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Probe(name, "unreachable", f"{method} {url}: {getattr(exc, 'reason', exc)}")
    if status in (401, 403):
        return Probe(name, "no permission", f"{url} refused the token ({status})")
    if status >= 500 or status == 405:
        return Probe(name, "wrong version", f"{url} answered {status}")
    return Probe(name, "ok", api.url)


def probe_toxiproxy(target: Target) -> tuple[Probe, dict[str, Probe]]:
    proxy = target.actuators.toxiproxy
    assert proxy is not None
    url = proxy.url.rstrip("/")
    try:
        status, body = _get(url + "/proxies")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        down = Probe(
            "toxiproxy", "unreachable", f"GET {url}/proxies: {getattr(exc, 'reason', exc)}"
        )
        return down, {d: down for d in proxy.proxies}
    listed = _json(body)
    if status != 200 or not isinstance(listed, dict):
        bad = Probe("toxiproxy", "wrong version", f"{url}/proxies answered {status}, not Toxiproxy")
        return bad, {d: bad for d in proxy.proxies}
    per_dep: dict[str, Probe] = {
        dep: Probe(f"proxy {name}", "ok", f"{name} → {listed[name].get('upstream', '?')}")
        if name in listed
        else Probe(f"proxy {name}", "missing", f"Toxiproxy has no proxy {name!r}")
        for dep, name in proxy.proxies.items()
    }
    return Probe("toxiproxy", "ok", f"{url} ({len(listed)} proxies)"), per_dep


def probe_docker(target: Target) -> tuple[Probe, dict[str, Probe]]:
    docker_cfg = target.actuators.docker
    assert docker_cfg is not None
    try:
        import docker
        import docker.errors
        import requests
    except ImportError:  # pragma: no cover - a dependency
        missing = Probe("docker", "missing", "the docker SDK is not installed")
        return missing, {}
    host = docker_cfg.host or os.environ.get("DOCKER_HOST", "")
    where = host or "unix:///var/run/docker.sock (the default)"
    try:
        client = docker.DockerClient(base_url=host or None, timeout=int(TIMEOUT_S))
    except docker.errors.DockerException:
        down = Probe("docker", "unreachable", f"no Docker Engine answers at {where}")
        return down, {c: down for c in docker_cfg.containers}
    try:
        client.ping()
    except (docker.errors.DockerException, requests.RequestException):
        client.close()
        down = Probe("docker", "unreachable", f"no Docker Engine answers at {where}")
        return down, {c: down for c in docker_cfg.containers}
    found: dict[str, Probe] = {}
    try:
        for component, name in docker_cfg.containers.items():
            try:
                status = client.containers.get(name).status
            except docker.errors.NotFound:
                found[component] = Probe(f"container {name}", "missing", "no such container")
                continue
            except docker.errors.APIError as exc:
                found[component] = Probe(f"container {name}", "no permission", str(exc))
                continue
            found[component] = (
                Probe(f"container {name}", "ok", status)
                if status == "running"
                else Probe(f"container {name}", "missing", f"container is {status}")
            )
    finally:
        client.close()
    return Probe("docker", "ok", host or "default engine"), found


def probe_processes(target: Target) -> tuple[Probe, dict[str, Probe]]:
    procs = target.actuators.processes
    assert procs is not None
    table: dict[str, int | None] = {}
    if procs.state_file is not None:
        state = read_state(procs.state_file.parent)
        if state is None:
            down = Probe("processes", "missing", f"cannot read {procs.state_file}")
            return down, {}
        table = {name: comp.pid for name, comp in state.components.items()}
    else:
        for name, path in procs.pid_files.items():
            try:
                table[name] = int(Path(path).read_text().split()[0])
            except (OSError, ValueError, IndexError):
                table[name] = None
    per = {
        name: Probe(f"process {name}", "ok", f"pid {pid}")
        if pid and pid_alive(pid)
        else Probe(f"process {name}", "missing", "not running")
        for name, pid in table.items()
    }
    return Probe("processes", "ok", f"{sum(p.ok for p in per.values())} running"), per


def probe_cgroup(path: Path) -> Probe:
    limit = next(
        (path / f for f in ("memory.max", "memory.limit_in_bytes") if (path / f).exists()), None
    )
    if limit is None:
        return Probe("cgroup", "missing", f"{path} is no memory cgroup")
    if not os.access(path / "cgroup.procs", os.W_OK):
        return Probe("cgroup", "no permission", f"cannot write {path / 'cgroup.procs'}")
    return Probe("cgroup", "ok", str(path))


# ------------------------------------------------------------------ the report


def check_target(target: Target, environ: Mapping[str, str] | None = None) -> TargetReport:
    """Probe ``target``; what it can do, and why not where it cannot."""
    env = os.environ if environ is None else environ
    report = TargetReport(target)
    probes = report.probes
    sig, act = target.signals, target.actuators
    by_capability: dict[str, Probe] = {}

    checkout = probes["checkout"] = probe_checkout(target)
    by_capability["checkout"] = by_capability["checkout.readback"] = checkout
    if sig.prometheus:
        probes["prometheus"] = by_capability["metrics"] = probe_prometheus(sig.prometheus)
        by_capability["alerts"] = probes["prometheus"]
    if sig.alertmanager:
        probes["alertmanager"] = probe_alertmanager(sig.alertmanager)
    for name in ("traces", "logs", "rum", "notifications"):
        store = getattr(sig, name)
        if store is not None:
            probes[name] = by_capability[name] = probe_store(name, store)
    if act.toxiproxy is not None:
        probes["toxiproxy"], per_dep = probe_toxiproxy(target)
        for dep, probe in per_dep.items():
            probes[f"proxy.{dep}"] = by_capability[f"proxy.{dep}"] = probe
    if act.gateway_admin is not None:
        gw = probes["gateway_admin"] = _admin(
            "gateway_admin", act.gateway_admin, "/admin/behaviours", env
        )
        by_capability["gateway.behaviours"] = by_capability["gateway.ledger"] = gw
    if act.api_admin is not None:
        # deleting a leak that does not exist: 404 with a good token, 403 without
        api = probes["api_admin"] = _admin(
            "api_admin", act.api_admin, "/admin/leak/no-such-leak", env, method="DELETE"
        )
        by_capability["api.leak"] = api
    if act.docker is not None:
        probes["docker"], per_container = probe_docker(target)
        for component, probe in per_container.items():
            probes[f"container.{component}"] = by_capability[f"container.{component}"] = probe
    if act.processes is not None:
        probes["processes"], per_process = probe_processes(target)
        for component, probe in per_process.items():
            probes[f"process.{component}"] = by_capability[f"process.{component}"] = probe
    if act.cgroup is not None:
        probes["cgroup"] = by_capability["instance.cgroup"] = probe_cgroup(act.cgroup)
    if act.memory_hog or act.cgroup:
        by_capability["memory.hog"] = Probe("memory.hog", "ok", "this host")

    offered = target.capabilities()
    for capability in CAPABILITIES:
        if capability not in offered:
            report.capabilities[capability] = "not configured"
            continue
        source = by_capability.get(capability)
        report.capabilities[capability] = (
            None if source is None or source.ok else f"{source.status}: {source.detail}"
        )
    report.faults = _fault_support(report.capabilities)
    report.expectations = {
        kind: _why_not(report.capabilities, needs) for kind, needs in EXPECTATION_NEEDS.items()
    }
    return report


def _why_not(capabilities: Mapping[str, str | None], needs: list[str]) -> str | None:
    reasons = []
    for need in needs:
        alternatives = need.split("|")
        if any(capabilities.get(alt, "not configured") is None for alt in alternatives):
            continue
        why = "; ".join(
            f"{alt}: {capabilities.get(alt) or 'not configured'}" for alt in alternatives
        )
        reasons.append(why)
    return "; ".join(reasons) or None


def _fault_support(capabilities: Mapping[str, str | None]) -> dict[str, str | None]:
    from paychaos.chaos.catalog import RegistryFaultCatalog

    catalog = RegistryFaultCatalog()
    out: dict[str, str | None] = {}
    for name in catalog.names():
        try:
            prepared = catalog.validate(name, {}, 60.0)
        except (InvalidFault, ValueError):
            out[name] = None
            continue
        needs = catalog.requires(prepared)
        if name in ("kill", "pause", "restart"):
            # any component will do: supported where at least one can be signalled
            needs = ["|".join(f"process.{c}|container.{c}" for c in COMPONENTS)]
        out[name] = _why_not(capabilities, needs)
    return out


def render(report: TargetReport) -> str:
    """The capability table ``paychaos target check`` prints."""
    t = report.target
    lines = [f"target {t.name} ({t.kind}){': ' + t.description if t.description else ''}", ""]
    lines.append("endpoints and actuators")
    width = max((len(p) for p in report.probes), default=10) + 2
    for key, probe in report.probes.items():
        lines.append(f"  {key:<{width}} {probe.status:<15} {probe.detail}")
    lines += ["", "fault types"]
    for name, why in sorted(report.faults.items()):
        lines.append(f"  {name:<22} {'yes' if why is None else 'no   ' + why}")
    lines += ["", "expectation types"]
    for name, why in report.expectations.items():
        lines.append(f"  {name:<22} {'yes' if why is None else 'no   ' + why}")
    usable = sum(1 for why in report.capabilities.values() if why is None)
    lines += ["", f"{usable} of {len(report.capabilities)} capabilities usable"]
    return "\n".join(lines)


__all__ = ["Probe", "TargetReport", "check_target", "render"]
