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
- ``instance_memory_limit_bytes``: the host's memory;
- ``instance_oom_kills_total``: the kernel's OOM kills *in this stack's memory
  cgroups* — its containers' and its memory hogs' own (the chaos journal names
  them) — read from the host's cgroup tree, mounted read-only, each cgroup's
  highest count kept once it is gone. (The embedded stack counts the host's
  OOM kills; here another stack's or program's OOM kill on the same host is
  not this instance's, which keeps ``InstanceOOMKill`` about this stack.);
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
#: Where the container sees the host's cgroup tree (``/sys/fs/cgroup``, mounted read-only).
CGROUP_MOUNT = Path("/host/cgroup")
HOST_CGROUP_ROOT = Path("/sys/fs/cgroup")


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


def memory_cgroup_of(pid: int, proc: Path = Path("/proc")) -> str | None:
    """The memory cgroup of ``pid`` relative to its hierarchy (v1 ``memory``, else v2)."""
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    v1 = [line.split(":", 2)[2] for line in lines if ":memory:" in line]
    if v1:
        return v1[0]
    v2 = [line.split(":", 2)[2] for line in lines if line.startswith("0::")]
    return v2[0] if v2 else None


def oom_kills_in(directory: Path) -> int | None:
    """The ``oom_kill`` count of a memory cgroup directory (v2 ``memory.events``, v1
    ``memory.oom_control``); None when it is not there (gone, or not a cgroup)."""
    for name in ("memory.events", "memory.oom_control"):
        try:
            text = (directory / name).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    return None


class StackOomKills:
    """OOM kills in the stack's memory cgroups: its containers' and its hogs' own.

    Container cgroups come from their main processes (``/proc/<pid>/cgroup``, the
    host's pid and cgroup namespaces); the hogs' from the chaos journal
    (``memory-pressure`` with a cgroup of its own), read live while the cgroup
    exists and from the journal once it is gone (its watchdog removes it as soon
    as the hog dies, recording the count first: faster than a scrape). A
    cgroup's highest count is kept, so the total only grows, as a counter must.
    """

    def __init__(
        self,
        pids: Callable[[], list[int]],
        hog_cgroups: Callable[[], list[tuple[Path, int]]],
        *,
        mount: Path = CGROUP_MOUNT,
        proc: Path = Path("/proc"),
    ) -> None:
        self._pids, self._hog_cgroups = pids, hog_cgroups
        self._mount, self._proc = mount, proc
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def _in_mount(self, relative: str) -> Path:
        v1 = self._mount / "memory"
        base = v1 if v1.is_dir() else self._mount
        return base / relative.lstrip("/")

    def _directories(self) -> list[tuple[Path, int]]:
        """(cgroup directory as mounted here, count already recorded elsewhere)."""
        dirs = []
        for pid in self._pids():
            relative = memory_cgroup_of(pid, self._proc)
            if relative is not None:
                dirs.append((self._in_mount(relative), 0))
        for host_path, recorded in self._hog_cgroups():
            try:
                dirs.append((self._mount / host_path.relative_to(HOST_CGROUP_ROOT), recorded))
            except ValueError:
                dirs.append((host_path, recorded))  # not under /sys/fs/cgroup: the record only
        return dirs

    def total(self) -> int:
        with self._lock:
            for directory, recorded in self._directories():
                count = max(oom_kills_in(directory) or 0, recorded)
                key = str(directory)
                self._seen[key] = max(self._seen.get(key, 0), count)
            return sum(self._seen.values())


class DockerInstance(HostInstance):
    """:class:`HostInstance` with the stack's own OOM kills instead of the host's."""

    def __init__(self, root_pids: Callable[[], list[int]], oom: StackOomKills) -> None:
        super().__init__(root_pids)
        self._oom = oom

    def oom_kills(self) -> int:
        return self._oom.total()


def hog_cgroups(state_dir: Path) -> list[tuple[Path, int]]:
    """The own cgroups of the ``memory-pressure`` hogs in the chaos journal (ended ones
    too), each with the OOM-kill count recorded when it was removed (0 while it lives)."""
    from paychaos.chaos.journal import Journal, journal_path

    out = []
    for entry in Journal(journal_path(state_dir)).entries():
        if entry.fault == "memory-pressure" and entry.details.get("own_cgroup"):
            cgroup = entry.details.get("cgroup")
            recorded = entry.end_details.get("oom_kills")
            if cgroup:
                out.append((Path(str(cgroup)), recorded if isinstance(recorded, int) else 0))
    return out


def build_registry(
    client: Any, project: str, state_dir: Path, *, cgroup_mount: Path = CGROUP_MOUNT
) -> Any:
    """The exporter's registry: instance USE metrics, components, chaos journal."""
    from paychaos.chaos.exporter import FaultJournalCollector, active_hog_pids

    snapshot = Snapshot(lambda: container_rows(client, project))

    def container_pids() -> list[int]:
        return [row.pid for row in snapshot.rows() if row.pid]

    def root_pids() -> list[int]:
        return container_pids() + active_hog_pids(state_dir)

    oom = StackOomKills(container_pids, lambda: hog_cgroups(state_dir), mount=cgroup_mount)

    def components() -> list[dict[str, Any]]:
        return [
            {"name": row.component, "alive": row.running, "restarts": row.restarts}
            for row in snapshot.rows()
        ]

    registry = instance_registry(DockerInstance(root_pids, oom), components)
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


__all__ = [
    "COMPONENT",
    "ContainerRow",
    "DockerInstance",
    "Snapshot",
    "StackOomKills",
    "build_registry",
    "container_rows",
    "hog_cgroups",
    "main",
    "memory_cgroup_of",
    "oom_kills_in",
]
