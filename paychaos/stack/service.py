"""Conventions every stack service follows, so the supervisor can run any of them.

A service is started as ``python -m stack.<name> --host 127.0.0.1 --port N [...]``,
answers ``GET /healthz`` with 200 once it can serve, exposes ``GET /metrics``
(Prometheus text format), reads ``OTEL_EXPORTER_OTLP_ENDPOINT`` for where to
send traces and logs, and exits cleanly within a few seconds of SIGTERM.

An ASGI service (:func:`serve_asgi`) also tunes Python's garbage collector once
set up: what exists by then (modules, the app, the OpenTelemetry SDK) is frozen
out of every later collection, and the youngest generation is collected every
``PAYCHAOS_GC_GEN0_THRESHOLD`` allocations (default 20,000; Python's is 700;
``python`` keeps Python's settings). Spans waiting in the SDK's export queue
outlive the youngest generation and made the collector walk them again and
again; see the README's "The stack's figures".
"""

from __future__ import annotations

import argparse
import atexit
import gc
import ipaddress
import os
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
GC_ENV = "PAYCHAOS_GC_GEN0_THRESHOLD"
DEFAULT_GC_GEN0_THRESHOLD = 20_000


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
    """A free TCP port for a server on ``host``: reserved (:func:`reserve_free_port`) on
    IPv4 loopback, else the kernel's choice from the ephemeral range."""
    if host == "127.0.0.1":
        return reserve_free_port()
    return _kernel_port(host)


def _kernel_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a free TCP port on ``host`` (ephemeral range)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


#: How long a port handed out by :func:`reserve_free_port` stays reserved: the time
#: a stack takes from choosing its ports to its components binding them.
RESERVATION_S = 300.0
#: How many ports below the ephemeral range automatic choices come from.
AUTO_PORTS = 8000
_reservations: list[tuple[float, socket.socket]] = []
_reservations_lock = threading.Lock()


@atexit.register
def _release_reservations() -> None:
    """Close the reservations at exit (the kernel would; this spares Python's
    ResourceWarning for each socket still open)."""
    with _reservations_lock:
        for _t, lock in _reservations:
            lock.close()
        _reservations.clear()


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (clients' source ports)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def reserve_free_port(low: int | None = None, high: int | None = None, attempts: int = 500) -> int:
    """A free loopback TCP port, reserved against every other paychaos process.

    Two things used to take a port between a stack choosing it and its component
    binding it (CI saw another stack's exporter answer on Prometheus' port):
    a client connection's source port, and another stack choosing the same port.
    So the port comes from below the kernel's ephemeral range (no source port is
    taken from there), and it is reserved for :data:`RESERVATION_S` by binding the
    abstract Unix socket ``@paychaos-port-N``: no file, released by the kernel when
    this process ends, and another paychaos process choosing ports skips it.
    """
    return reserve_port_block(1, low, high, attempts)


def reserve_port_block(
    count: int, low: int | None = None, high: int | None = None, attempts: int = 500
) -> int:
    """The first of ``count`` consecutive free loopback ports, each reserved as in
    :func:`reserve_free_port` (``--port-base`` for a whole stack).

    By default from the :data:`AUTO_PORTS` ports just below the ephemeral range:
    above the fixed bases the README gives (``--port-base 20000``, ``23000``), so a
    stack a user starts on them never meets a port another stack chose for itself.
    """
    high = _ephemeral_low() if high is None else high
    low = max(1024, high - AUTO_PORTS) if low is None else low
    if high - count < low:  # an odd ephemeral range: the kernel's choice
        if count == 1:
            return _kernel_port()
        raise OSError(f"no room for {count} consecutive ports in [{low}, {high})")
    now = time.monotonic()
    with _reservations_lock:
        for held in [r for r in _reservations if now - r[0] > RESERVATION_S]:
            held[1].close()
            _reservations.remove(held)
        rng = random.Random(os.getpid() ^ time.monotonic_ns())
        for _ in range(attempts):
            base = rng.randrange(low, high - count + 1)
            locks: list[socket.socket] = []
            for port in range(base, base + count):
                if not port_free(port):
                    break
                lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    lock.bind(f"\0paychaos-port-{port}")
                except OSError:  # another paychaos process holds it
                    lock.close()
                    break
                locks.append(lock)
            if len(locks) == count:
                _reservations.extend((now, lock) for lock in locks)
                return base
            for lock in locks:
                lock.close()
    if count == 1:
        return _kernel_port()  # none found in the range: the kernel's choice (ephemeral)
    raise OSError(f"no {count} consecutive free ports in [{low}, {high}) after {attempts} tries")


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


def gc_gen0_threshold(environ: Any) -> int | None:
    """The youngest generation's threshold ``PAYCHAOS_GC_GEN0_THRESHOLD`` asks for (``None``:
    keep Python's settings); a bad value exits naming the variable."""
    raw = str(environ.get(GC_ENV, "")).strip()
    if not raw:
        return DEFAULT_GC_GEN0_THRESHOLD
    if raw == "python":
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 100:
        raise SystemExit(f"{GC_ENV}: expected a whole number >= 100 or 'python', got {raw!r}")
    return int(raw)


def tune_gc(gen0_threshold: int) -> None:
    """Freeze what exists now out of every later collection; collect the youngest generation
    every ``gen0_threshold`` allocations (the older generations' thresholds unchanged)."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)


def serve_asgi(app: Any, host: str, port: int, log_level: str = "warning") -> None:
    """Run an ASGI app with uvicorn (uvloop + httptools), no access log, the garbage
    collector tuned (:func:`tune_gc`, unless ``PAYCHAOS_GC_GEN0_THRESHOLD=python``).

    uvicorn handles SIGTERM/SIGINT itself: in-flight requests finish, lifespan
    shutdown runs, then the process exits.
    """
    import uvicorn

    gen0 = gc_gen0_threshold(os.environ)
    if gen0 is not None:
        tune_gc(gen0)

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
