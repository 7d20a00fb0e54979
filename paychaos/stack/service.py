"""Conventions every stack service follows, so the supervisor can run any of them.

A service is started as ``python -m stack.<name> --host 127.0.0.1 --port N [...]``,
answers ``GET /healthz`` with 200 once it can serve, exposes ``GET /metrics``
(Prometheus text format), reads ``OTEL_EXPORTER_OTLP_ENDPOINT`` for where to
send traces and logs, and exits cleanly within a few seconds of SIGTERM.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
from typing import Any

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def base_parser(description: str, default_port: int) -> argparse.ArgumentParser:
    """An ``argparse`` parser with the ``--host``/``--port``/``--log-level`` every service takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=default_port, help=f"port (default {default_port})"
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return parser


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a free TCP port on ``host`` (ephemeral range)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a TCP listener could bind ``host:port`` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def serve_asgi(app: Any, host: str, port: int, log_level: str = "warning") -> None:
    """Run an ASGI app with uvicorn (uvloop + httptools), no access log.

    uvicorn handles SIGTERM/SIGINT itself: in-flight requests finish, lifespan
    shutdown runs, then the process exits.
    """
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
        server_header=False,
        lifespan="on",
    )
    uvicorn.Server(config).run()
