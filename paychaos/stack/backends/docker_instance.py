"""The Docker stack's instance exporter (Prometheus job ``instance``), run as a container.

The embedded stack exports the instance it runs on from its holder process
(:mod:`paychaos.stack.instance`); the Docker stack has no holder process, so
this exporter runs beside the other containers, as cAdvisor or node-exporter
would: host network, the host's pid namespace (``--pid host``), the engine's
socket, and the state directory's chaos journal mounted read-only. It exports
the same series as the embedded stack's, with the same meaning:

- ``instance_memory_used_bytes``, ``instance_cpu_seconds_total``: resident
  memory and CPU of the process trees of this project's containers (their
  main processes from the engine), plus the live memory hogs the chaos
  journal names (a ``memory-pressure`` hog runs on the engine's host);
- ``instance_memory_limit_bytes``: the host's memory; ``instance_oom_kills_total``:
  the host kernel's OOM kills since the exporter started;
- ``paychaos_component_up{component}``: 1 while the container runs;
  ``paychaos_component_restarts_total{component}``: the engine's ``RestartCount``
  (restarts by the restart policy — after a crash, not after ``docker kill``);
- ``chaos_fault_active{fault,target}``: container, process and memory faults
  from the chaos journal (the proxy and the gateway export their own).

Run::

    python -m paychaos.stack.backends.docker_instance --host 127.0.0.1 --port 9101 \\
        --project paychaos --state-dir /state
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paychaos.stack.instance import HostInstance, instance_registry

#: The component label of the exporter's own container (not a component of the stack).
COMPONENT = "instance"


@dataclass(frozen=True)
class ContainerRow:
    component: str
    pid: int
    running: bool
    restarts: int


def container_rows(client: Any, project: str) -> list[ContainerRow]:
    """This project's containers (the exporter's own left out), from the engine."""
    rows = []
    for summary in client.api.containers(
        all=True, filters={"label": f"paychaos.project={project}"}
    ):
        component = (summary.get("Labels") or {}).get("paychaos.component", "")
        if not component or component == COMPONENT:
            continue
        info = client.api.inspect_container(summary["Id"])
        state = info.get("State") or {}
        rows.append(
            ContainerRow(
                component=component,
                pid=int(state.get("Pid") or 0),
                running=bool(state.get("Running")),
                restarts=int(info.get("RestartCount") or 0),
            )
        )
    return rows


class Snapshot:
    """The engine's view, fetched at most once per ``max_age_s`` (one scrape reads it thrice)."""

    def __init__(self, fetch: Callable[[], list[ContainerRow]], *, max_age_s: float = 0.5) -> None:
        self._fetch = fetch
        self._max_age_s = max_age_s
        self._rows: list[ContainerRow] = []
        self._at = float("-inf")
        self._lock = threading.Lock()

    def rows(self) -> list[ContainerRow]:
        with self._lock:
            now = time.monotonic()
            if now - self._at > self._max_age_s:
                try:
                    self._rows = self._fetch()
                except Exception as exc:  # the engine is away: report nothing rather than die
                    print(f"docker-instance: the engine did not answer: {exc}", file=sys.stderr)
                    self._rows = []
                self._at = now
            return list(self._rows)


def build_registry(client: Any, project: str, state_dir: Path) -> Any:
    """The exporter's registry: instance USE metrics, components, chaos journal."""
    from paychaos.chaos.exporter import FaultJournalCollector, active_hog_pids

    snapshot = Snapshot(lambda: container_rows(client, project))

    def root_pids() -> list[int]:
        pids = [row.pid for row in snapshot.rows() if row.pid]
        return pids + active_hog_pids(state_dir)

    def components() -> list[dict[str, Any]]:
        return [
            {"name": row.component, "alive": row.running, "restarts": row.restarts}
            for row in snapshot.rows()
        ]

    registry = instance_registry(HostInstance(root_pids), components)
    registry.register(FaultJournalCollector(state_dir))
    return registry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paychaos.stack.backends.docker_instance")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--project", required=True, help="the paychaos.project label")
    parser.add_argument(
        "--state-dir", type=Path, required=True, help="holds chaos/ (the journal), read-only"
    )
    args = parser.parse_args(argv)

    import docker
    import docker.errors
    from prometheus_client import start_http_server

    try:
        client = docker.from_env(timeout=10)
    except docker.errors.DockerException as exc:
        print(f"docker-instance: no Docker Engine: {exc}", file=sys.stderr)
        return 1
    registry = build_registry(client, args.project, args.state_dir)
    server, _thread = start_http_server(args.port, addr=args.host, registry=registry)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"docker-instance: project {args.project} on http://{args.host}:{args.port}/metrics")
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["COMPONENT", "ContainerRow", "Snapshot", "build_registry", "container_rows", "main"]
