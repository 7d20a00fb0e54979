"""The seed's NestJS payment service (``stack/nestjs/``) as the embedded stack's payment API.

``paychaos up --app nestjs`` runs it in place of the Python API: the same
component name (``api``), port, PostgreSQL (through the fault proxy) and
gateway, the same HTTP contract and metric names, its own instrumentation
(``@willsoto/nestjs-prometheus``, OpenTelemetry for Node, pino). It is built
with npm from the registry (``make nestjs``: ``npm ci`` then ``tsc``); this
module only finds the build and says how to make it when it is missing.

Example::

    problem = build_problem()          # None when node and the build are there
    spec = process_spec(node, port=8000, database_url=dsn, gateway_url=url, ...)
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping

from paychaos.contracts.errors import StackError
from paychaos.contracts.layout import STACK_DIR
from paychaos.stack.process import ProcessSpec, RestartPolicy

APPS = ("python", "nestjs")
NESTJS_DIR = STACK_DIR / "nestjs"
ENTRY = NESTJS_DIR / "dist" / "main.js"
MIN_NODE_MAJOR = 20
BUILD_HINT = "make nestjs  (runs: cd stack/nestjs && npm ci && npm run build)"


def node_binary() -> str | None:
    """The ``node`` on PATH, if any."""
    return shutil.which("node")


def node_major(node: str) -> int | None:
    """The major version of ``node`` (``v20.11.1`` -> 20); None when it does not answer."""
    try:
        out = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"v(\d+)\.", out.strip())
    return int(match.group(1)) if match else None


def _newest_source_mtime() -> float:
    sources = [
        *NESTJS_DIR.joinpath("src").glob("*.ts"),
        NESTJS_DIR / "package-lock.json",
    ]
    return max((p.stat().st_mtime for p in sources if p.exists()), default=0.0)


def build_problem(node: str | None = None) -> str | None:
    """Why the NestJS service cannot run here, with the command that fixes it; None if it can."""
    node = node or node_binary()
    if node is None:
        return (
            "--app nestjs needs Node.js 20 or newer and npm: node is not on PATH "
            "(Debian 13's nodejs and npm packages; Debian 12's Node.js 18 is too old), then: "
            + BUILD_HINT
        )
    major = node_major(node)
    if major is None or major < MIN_NODE_MAJOR:
        found = f"Node.js {major}" if major is not None else f"{node} (no version answered)"
        return f"--app nestjs needs Node.js {MIN_NODE_MAJOR} or newer; found {found}"
    if not (NESTJS_DIR / "node_modules").is_dir():
        return (
            f"--app nestjs: the Node packages are not installed in {NESTJS_DIR}; run: {BUILD_HINT}"
        )
    if not ENTRY.is_file():
        return f"--app nestjs: the service is not built ({ENTRY} is missing); run: {BUILD_HINT}"
    if ENTRY.stat().st_mtime < _newest_source_mtime():
        return f"--app nestjs: the build in {ENTRY.parent} is older than its sources; run: {BUILD_HINT}"
    return None


def require_build() -> str:
    """The ``node`` binary to run the service with; :class:`StackError` naming what is missing."""
    problem = build_problem()
    if problem is not None:
        raise StackError(problem)
    node = node_binary()
    assert node is not None
    return node


#: The service's environment besides the OTLP endpoint (embedded and Docker alike).
SERVICE_ENV: Mapping[str, str] = {"OTEL_SERVICE_NAME": "payment-api", "NODE_ENV": "production"}


def service_args(
    *,
    port: int,
    database_url: str,
    gateway_url: str,
    gateway_timeout_s: float,
    cors_origins: tuple[str, ...] = (),
) -> tuple[str, ...]:
    """The service's command-line arguments after ``node dist/main.js`` (no secret among them)."""
    return (
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--database-url",
        database_url,
        "--gateway-url",
        gateway_url,
        "--gateway-timeout-s",
        str(gateway_timeout_s),
        *(arg for origin in cors_origins for arg in ("--cors-origin", origin)),
    )


def process_spec(
    node: str,
    *,
    port: int,
    database_url: str,
    gateway_url: str,
    gateway_timeout_s: float,
    env: Mapping[str, str],
    restart: RestartPolicy,
    cors_origins: tuple[str, ...] = (),
) -> ProcessSpec:
    """The ``api`` component running the NestJS service (``cors_origins``: the checkout
    page's origin, when the stack serves it)."""
    return ProcessSpec(
        name="api",
        argv=(
            node,
            str(ENTRY),
            *service_args(
                port=port,
                database_url=database_url,
                gateway_url=gateway_url,
                gateway_timeout_s=gateway_timeout_s,
                cors_origins=cors_origins,
            ),
        ),
        env={**SERVICE_ENV, **env},
        cwd=str(NESTJS_DIR),
        health_url=f"http://127.0.0.1:{port}/healthz",
        port=port,
        restart=restart,
    )


__all__ = [
    "APPS",
    "BUILD_HINT",
    "ENTRY",
    "NESTJS_DIR",
    "SERVICE_ENV",
    "build_problem",
    "node_binary",
    "process_spec",
    "require_build",
    "service_args",
]
