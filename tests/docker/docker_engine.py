"""Helpers of the Docker tests: find or start a Docker Engine, build the images.

Order of preference, each failure recorded for the skip reason:

1. the engine ``DOCKER_HOST`` (or the default socket) names, if it answers;
2. the engine ``stack/docker/ci-dockerd.sh start`` runs (socket
   ``/run/paychaos-docker.sock``), if it answers;
3. a ``dockerd`` started here (root, binary present), with its own socket,
   data-root and exec-root under a temporary directory, stopped by its pid.

Images: the base image comes from ``stack/docker/build-base.sh`` (debootstrap
from the host's Debian mirror), the project's from their Dockerfiles.

Without an engine (or a tool the Docker tests need) a test is skipped with the
reason — except under CI (``CI`` set, e.g. ``CI=true``), where it *fails* with
the reason: CI must run the Docker tests, never pass by skipping them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from tests.cannot_run import cannot_run, in_ci

REPO = Path(__file__).resolve().parents[2]
CI_SOCKET = "unix:///run/paychaos-docker.sock"


def unavailable(reason: str) -> NoReturn:
    """Skip with ``reason``; under CI, fail with it (a skipped Docker test proves nothing)."""
    if in_ci():
        reason += f" (CI={os.environ.get('CI')}: the Docker tests must run)"
    cannot_run(reason)


def _answers(base_url: str | None) -> Any:
    """A client of the engine at ``base_url`` if it answers, else None (nothing left open)."""
    import socket

    import docker
    import docker.errors

    url = base_url or "unix:///var/run/docker.sock"
    if url.startswith("unix://"):
        # docker-py leaks the socket of a refused unix connection: probe it ourselves first
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(2)
            if probe.connect_ex(url[len("unix://") :]) != 0:
                return None
    client = docker.DockerClient(base_url=url, timeout=300)
    try:
        client.ping()
    except (docker.errors.DockerException, OSError):
        client.close()
        return None
    return client


@contextlib.contextmanager
def docker_engine() -> Iterator[tuple[Any, str]]:
    """Yield ``(client, docker_host)``; :func:`unavailable` with every reason when none runs."""
    reasons: list[str] = []
    env_host = os.environ.get("DOCKER_HOST", "")
    client = _answers(env_host or None)
    if client is not None:
        with contextlib.closing(client):
            yield client, env_host
        return
    reasons.append(f"no engine at {env_host or 'the default socket'}")
    client = _answers(CI_SOCKET)
    if client is not None:
        with contextlib.closing(client):
            yield client, CI_SOCKET
        return
    reasons.append(f"no engine at {CI_SOCKET} (stack/docker/ci-dockerd.sh start)")
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        reasons.append(
            "cannot start one: "
            + (
                "dockerd is not installed (apt-get install docker.io)"
                if dockerd is None
                else "not root"
            )
        )
        unavailable("no Docker Engine: " + "; ".join(reasons))
    root = Path(tempfile.mkdtemp(prefix="paychaos-dockerd-"))
    sock = f"unix://{root}/docker.sock"
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            dockerd,
            "--host",
            sock,
            "--data-root",
            str(root / "data"),
            "--exec-root",
            str(root / "exec"),
            "--pidfile",
            str(root / "dockerd.pid"),
            "--storage-driver=vfs",
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        client = None
        while client is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            client = _answers(sock)
        if client is None:
            tail = (root / "dockerd.log").read_text(errors="replace")[-800:]
            unavailable(f"no Docker Engine: {'; '.join(reasons)}; dockerd did not start: {tail}")
        with contextlib.closing(client):
            yield client, sock
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def ensure_base_image(client: Any, docker_host: str, tag: str) -> float:
    """Build the base image with build-base.sh unless present; seconds spent (0 if present)."""
    import pytest

    from paychaos.stack.backends.images import image_exists

    if image_exists(client, tag):
        return 0.0
    if shutil.which("debootstrap") is None:
        unavailable(
            "base image missing and debootstrap is not installed (apt-get install debootstrap)"
        )
    started = time.monotonic()
    env = {**os.environ, "DOCKER_HOST": docker_host} if docker_host else dict(os.environ)
    result = subprocess.run(
        [str(REPO / "stack" / "docker" / "build-base.sh"), tag],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"build-base.sh failed: {result.stdout[-1000:]}{result.stderr[-2000:]}")
    return time.monotonic() - started
