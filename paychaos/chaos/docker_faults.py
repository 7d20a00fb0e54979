"""Process and memory faults on containers, through the Docker Engine API (``docker`` SDK).

The containers and the engine come from the target's ``docker`` actuator
(component → container name; ``host`` in ``DOCKER_HOST`` form, empty: the
environment's): the Docker stack's own target records them, and a team's
target file names its own containers.

- ``docker-pause``: ``container.pause()`` (cgroup freezer), unpaused at the end;
- ``docker-crash``: SIGKILL to the container's main process from this host, as
  a crash: the engine's restart policy (``unless-stopped``) starts it again and
  counts it in the container's ``RestartCount`` — what ``kill`` does on containers;
- ``docker-kill``: ``container.kill()`` (SIGKILL, which the engine records as a
  manual stop, so its restart policy does not apply); the container stays down
  for the fault's duration, then is started again (an outage of known length);
- ``docker-restart``: ``container.restart()`` (SIGTERM, then start);
- ``docker-memory-limit``: ``container.update(mem_limit=...)``, the previous
  limit restored at the end; past it the kernel OOM-kills inside the container;
- ``docker-memory-hog``: :mod:`paychaos.chaos.hog` joins the container's memory cgroup,
  so its pages count against the container's limit, exactly like a leak in it.

Every change carries its TTL: a detached helper (``python -m paychaos.chaos.docker_faults
expire ...``, started *before* the change) undoes it at the deadline even if
the controller was SIGKILLed; the hog has its own alarm and watchdog
(:mod:`paychaos.chaos.memory`). ``revert`` is idempotent and accepts a partial record.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from paychaos.chaos import procs
from paychaos.chaos.base import Applied, Fault, InjectContext
from paychaos.chaos.journal import FaultEvent, Journal
from paychaos.chaos.memory import MemoryPressure, MemoryPressureParams
from paychaos.chaos.params import param
from paychaos.chaos.spawn import python_module_argv, spawn_detached
from paychaos.chaos.target import FaultTarget
from paychaos.contracts.domain import COMPONENTS
from paychaos.contracts.errors import FaultInjectionFailed

MIB = 1 << 20
#: How long the expiry helper waits for a stopped container to start before giving up.
START_TIMEOUT_S = 30.0


# ------------------------------------------------------------------ the engine


@contextlib.contextmanager
def docker_client(docker_host: str = "", *, timeout_s: float = 30.0) -> Iterator[Any]:
    """A ``docker.DockerClient`` for ``docker_host`` (empty: ``DOCKER_HOST`` or the default),
    closed on exit."""
    try:
        import docker
        import docker.errors
    except ImportError as exc:  # pragma: no cover - docker is a dependency
        raise FaultInjectionFailed("the docker SDK is not installed (pip install docker)") from exc
    try:
        if docker_host:
            client = docker.DockerClient(base_url=docker_host, timeout=int(timeout_s))
        else:
            client = docker.from_env(timeout=int(timeout_s))
    except docker.errors.DockerException as exc:
        raise FaultInjectionFailed(f"cannot reach the Docker Engine: {exc}") from exc
    with contextlib.closing(client):
        yield client


@contextlib.contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Turn the SDK's exceptions into :class:`FaultInjectionFailed` naming ``action``."""
    import docker.errors
    import requests

    try:
        yield
    except docker.errors.NotFound as exc:
        raise FaultInjectionFailed(f"{action}: no such container ({exc.explanation})") from exc
    except docker.errors.APIError as exc:
        raise FaultInjectionFailed(f"{action}: {exc.explanation or exc}") from exc
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise FaultInjectionFailed(f"{action}: {exc}") from exc


def docker_host_of(target: FaultTarget) -> str:
    """The target's Docker Engine (``DOCKER_HOST`` form; empty: the environment's)."""
    return target.docker_host()


def container_name(target: FaultTarget, component: str) -> str:
    """The container the target names for ``component``."""
    return target.container(component)


def container_cgroup_dir(pid: int, proc_root: Path = Path("/proc")) -> Path:
    """The memory cgroup directory (host view) of the process ``pid`` (v1 or v2).

    Raises :class:`FaultInjectionFailed` when it cannot be found.
    """
    try:
        lines = (proc_root / str(pid) / "cgroup").read_text().splitlines()
    except OSError as exc:
        raise FaultInjectionFailed(f"cannot read the cgroup of pid {pid}: {exc}") from exc
    v1 = [line.split(":", 2) for line in lines if ":memory:" in line]
    if v1:
        return Path("/sys/fs/cgroup/memory") / v1[0][2].lstrip("/")
    v2 = [line.split(":", 2) for line in lines if line.startswith("0::")]
    if v2:
        return Path("/sys/fs/cgroup") / v2[0][2].lstrip("/")
    raise FaultInjectionFailed(f"pid {pid} is in no memory cgroup")


# ------------------------------------------------------------------ faults


@dataclass(frozen=True)
class ContainerParams:
    component: str = param("gateway", choices=COMPONENTS, help="component (its container)")


class _ContainerFault(Fault):
    family = "docker"
    params_cls: ClassVar[type[Any]] = ContainerParams
    exported_by_target = False
    expire_action: str = ""

    def target_label(self) -> str:
        return f"container/{self.params.component}"

    def requires(self) -> list[str]:
        return [f"container.{self.params.component}"]

    @contextlib.contextmanager
    def _container(self, target: FaultTarget) -> Iterator[Any]:
        """The component's container, its engine connection closed on exit."""
        name = container_name(target, self.params.component)
        with docker_client(docker_host_of(target)) as client:
            with engine_errors(f"{self.name} {name}"):
                container = client.containers.get(name)
            yield container

    def check(self, target: FaultTarget) -> None:
        with self._container(target) as container:
            if container.status != "running":
                raise FaultInjectionFailed(f"container {container.name} is {container.status}")

    def _start_expiry(self, ctx: InjectContext, applied: Applied, **extra: str) -> None:
        """The detached helper that undoes the change at the deadline (before the change)."""
        argv = python_module_argv(
            "paychaos.chaos.docker_faults",
            "expire",
            "--container",
            container_name(ctx.target, self.params.component),
            "--action",
            self.expire_action,
            "--deadline",
            repr(ctx.expires_at),
            "--docker-host",
            docker_host_of(ctx.target),
            "--journal",
            str(ctx.journal_path),
            "--fault-id",
            ctx.fault_id,
            "--fault",
            self.name,
            "--target",
            self.target_label(),
            *[item for key, value in extra.items() for item in (f"--{key}", value)],
        )
        log = ctx.journal_path.parent / "docker-expire.log"
        pid, ticks = spawn_detached(argv, log_path=log)
        applied.update(expire_pid=pid, expire_starttime=ticks)

    @staticmethod
    def _stop_expiry(applied: Mapping[str, Any]) -> None:
        import signal

        pid, ticks = applied.get("expire_pid"), applied.get("expire_starttime")
        if isinstance(pid, int) and isinstance(ticks, int):
            procs.signal_process(pid, ticks, signal.SIGKILL)
            procs.wait_gone(pid, ticks, 3.0)


class DockerPause(_ContainerFault):
    name = "docker-pause"
    description = "Freeze a container (docker pause); unpaused at the deadline."
    metric_fault = "container_pause"
    expire_action = "unpause"
    max_duration_s = 900.0

    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        with self._container(ctx.target) as container:
            applied["container"] = container.name
            self._start_expiry(ctx, applied)
            with engine_errors(f"pause {container.name}"):
                container.pause()
            applied["paused"] = True

    def revert(self, target: FaultTarget, applied: Mapping[str, Any]) -> dict[str, Any]:
        self._stop_expiry(applied)
        if not applied.get("paused"):
            return {"unpaused": False}
        with self._container(target) as container:
            with engine_errors(f"unpause {container.name}"):
                container.reload()
                if container.status == "paused":
                    container.unpause()
                    return {"unpaused": True}
            return {"unpaused": False, "status": container.status}


def _in_container(pid: int, container_id: str, proc_root: Path = Path("/proc")) -> bool:
    """True when ``pid`` (in this host's pid namespace) belongs to the container ``container_id``."""
    try:
        return container_id in (proc_root / str(pid) / "cgroup").read_text()
    except OSError:
        return False


class DockerCrash(_ContainerFault):
    """A crash: the container's main process SIGKILLed, the engine's restart policy at work.

    ``docker kill`` would mark the container as stopped by hand (no restart); a
    SIGKILL to its main process from this host is a crash like an OOM kill,
    and the engine restarts it (``RestartCount`` + 1). The engine must run on
    this host: the pid is checked to be in the container's cgroup before the signal.
    """

    name = "docker-crash"
    description = (
        "SIGKILL a container's main process (a crash); its restart policy starts it again."
    )
    metric_fault = "container_crash"

    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        import signal

        with self._container(ctx.target) as container:
            state = container.attrs.get("State") or {}
            pid = int(state.get("Pid") or 0)
            applied.update(
                container=container.name, pid=pid, restarts=int(container.attrs["RestartCount"])
            )
            if not pid or not _in_container(pid, container.id):
                raise FaultInjectionFailed(
                    f"container {container.name}: its main process (pid {pid}) is not visible "
                    "on this host; docker-crash needs the engine on this host"
                )
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError as exc:
                raise FaultInjectionFailed(
                    f"container {container.name}: pid {pid} exited before the signal"
                ) from exc
            applied["killed"] = True

    def revert(self, target: FaultTarget, applied: Mapping[str, Any]) -> dict[str, Any]:
        if not applied.get("killed"):
            return {}
        with self._container(target) as container:  # the restart policy's work, reported
            state = container.attrs.get("State") or {}
            return {
                "status": container.status,
                "restarts": int(container.attrs.get("RestartCount") or 0),
                "new_pid": state.get("Pid"),
            }


class DockerKill(_ContainerFault):
    name = "docker-kill"
    description = "SIGKILL a container (docker kill); started again at the deadline."
    metric_fault = "container_kill"
    expire_action = "start"

    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        with self._container(ctx.target) as container:
            applied["container"] = container.name
            self._start_expiry(ctx, applied)
            with engine_errors(f"kill {container.name}"):
                container.kill(signal="SIGKILL")
            applied["killed"] = True

    def revert(self, target: FaultTarget, applied: Mapping[str, Any]) -> dict[str, Any]:
        self._stop_expiry(applied)
        if not applied.get("killed"):
            return {"started": False}
        with self._container(target) as container:
            with engine_errors(f"start {container.name}"):
                container.reload()
                if container.status != "running":
                    container.start()
                    return {"started": True}
            return {"started": False, "status": container.status}


class DockerRestart(_ContainerFault):
    name = "docker-restart"
    description = "Restart a container (docker restart: SIGTERM, then start)."
    metric_fault = "container_restart"

    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        with self._container(ctx.target) as container:
            applied["container"] = container.name
            with engine_errors(f"restart {container.name}"):
                container.restart(timeout=10)
            applied["restarted"] = True

    def revert(self, target: FaultTarget, applied: Mapping[str, Any]) -> dict[str, Any]:
        return {}  # a restart is over once it happened; the TTL is the event's window


@dataclass(frozen=True)
class MemoryLimitParams:
    component: str = param("api", choices=COMPONENTS, help="component (its container)")
    limit_mb: int = param(256, min=8, max=65_536, help="new memory limit of the container")


class DockerMemoryLimit(_ContainerFault):
    name = "docker-memory-limit"
    description = "Lower a container's memory limit (docker update); restored at the deadline."
    params_cls = MemoryLimitParams
    metric_fault = "container_memory_limit"
    expire_action = "memory"
    max_duration_s = 1800.0

    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        with self._container(ctx.target) as container:
            host_config = container.attrs.get("HostConfig") or {}
            previous = int(host_config.get("Memory") or 0)
            previous_swap = int(host_config.get("MemorySwap") or 0)
            applied.update(
                container=container.name, previous_bytes=previous, previous_swap_bytes=previous_swap
            )
            self._start_expiry(
                ctx, applied, **{"memory-bytes": str(previous), "swap-bytes": str(previous_swap)}
            )
            limit = self.params.limit_mb * MIB
            with engine_errors(f"update {container.name}"):
                # memswap == limit: no swap beyond it (the engine refuses memswap < mem)
                if previous_swap and previous_swap < limit:
                    container.update(memswap_limit=limit * 2)
                container.update(mem_limit=limit, memswap_limit=limit)
            applied["limit_bytes"] = limit

    def revert(self, target: FaultTarget, applied: Mapping[str, Any]) -> dict[str, Any]:
        self._stop_expiry(applied)
        if "limit_bytes" not in applied:
            return {"restored": False}
        with self._container(target) as container:
            limit = restore_memory_limit(
                container,
                int(applied.get("previous_bytes") or 0),
                int(applied.get("previous_swap_bytes") or 0),
            )
            return {"restored": True, "limit_bytes": limit}


def restore_memory_limit(container: Any, previous_bytes: int, previous_swap_bytes: int = 0) -> int:
    """Put back ``previous_bytes`` (and memory+swap); returns the memory limit set.

    The engine cannot remove a limit (``docker update`` refuses -1 for memory, 0
    means "unchanged", and a memory+swap of -1 is ignored on update), so a
    container that had none gets the engine host's whole memory (``MemTotal``)
    and twice that as memory+swap: no limit in effect, as before.
    """
    with engine_errors(f"restore memory limit of {container.name}"):
        limit = previous_bytes if previous_bytes > 0 else int(container.client.info()["MemTotal"])
        swap = previous_swap_bytes if previous_swap_bytes > limit else 2 * limit
        container.update(mem_limit=limit, memswap_limit=swap)
    return limit


@dataclass(frozen=True)
class ContainerHogParams:
    component: str = param("api", choices=COMPONENTS, help="component (its container)")
    rate_mb_per_s: float = param(64.0, min=1, max=4096, help="growth rate")
    max_mb: int = param(256, min=1, max=65_536, help="size to grow to, then hold")


class DockerMemoryHog(_ContainerFault):
    """A :class:`~paychaos.chaos.memory.MemoryPressure` hog placed in the container's memory cgroup."""

    name = "docker-memory-hog"
    description = "A memory hog in a container's cgroup, charged to its limit (OOM kill past it)."
    params_cls = ContainerHogParams
    metric_fault = "container_memory_hog"
    max_duration_s = 1800.0

    def __init__(self, params: Any, duration_s: float) -> None:
        super().__init__(params, duration_s)
        hog = MemoryPressureParams(
            rate_mb_per_s=params.rate_mb_per_s, max_mb=params.max_mb, limit_mb=0
        )
        self._hog = MemoryPressure(hog, duration_s)

    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        with self._container(ctx.target) as container:
            pid = int((container.attrs.get("State") or {}).get("Pid") or 0)
            if not pid:
                raise FaultInjectionFailed(f"container {container.name} has no running process")
            cgroup = container_cgroup_dir(pid)
            applied.update(container=container.name, container_cgroup=str(cgroup))
            in_container = replace(ctx, target=ctx.target.with_cgroup(cgroup))
            self._hog.inject(in_container, applied)

    def revert(self, target: FaultTarget, applied: Mapping[str, Any]) -> dict[str, Any]:
        details = self._hog.revert(target, applied)
        cgroup = applied.get("container_cgroup")
        if cgroup:
            details["container_oom_kills"] = _oom_kills(Path(str(cgroup)))
        return details


def _oom_kills(cgroup: Path) -> int | None:
    """The kernel's OOM-kill count of a cgroup (v1 ``memory.oom_control``, v2 ``memory.events``)."""
    for name in ("memory.oom_control", "memory.events"):
        with contextlib.suppress(OSError, ValueError):
            for line in (cgroup / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    return None


FAULTS: tuple[type[Fault], ...] = (
    DockerPause,
    DockerCrash,
    DockerKill,
    DockerRestart,
    DockerMemoryLimit,
    DockerMemoryHog,
)


# ------------------------------------------------------------------ expiry helper


def expire(args: argparse.Namespace) -> int:
    """Sleep until the deadline, then undo the change (each action idempotent)."""
    import signal

    stop = [False]

    def on_term(_signum: int, _frame: object) -> None:
        stop[0] = True  # the controller reverted: undo now (harmless twice)

    signal.signal(signal.SIGTERM, on_term)
    while not stop[0] and time.time() < args.deadline:
        time.sleep(min(0.5, max(0.0, args.deadline - time.time())))
    details: dict[str, Any] = {"action": args.action}
    try:
        with (
            docker_client(args.docker_host) as client,
            engine_errors(f"{args.action} {args.container}"),
        ):
            container = client.containers.get(args.container)
            if args.action == "unpause" and container.status == "paused":
                container.unpause()
                details["done"] = True
            elif args.action == "start" and container.status != "running":
                container.start()
                details["done"] = True
            elif args.action == "memory":
                restore_memory_limit(container, int(args.memory_bytes), int(args.swap_bytes))
                details["done"] = True
    except FaultInjectionFailed as exc:
        print(f"docker-faults expire: {exc}", file=sys.stderr)
        return 1
    if args.journal and args.fault_id and details.get("done") and not stop[0]:
        with contextlib.suppress(OSError):
            Journal(Path(args.journal)).append(
                FaultEvent(
                    ts=time.time(),
                    event="expired",
                    id=args.fault_id,
                    fault=args.fault or "",
                    target=args.target or "",
                    details=details,
                    message=f"{args.action} {args.container} at the deadline",
                )
            )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m paychaos.chaos.docker_faults")
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("expire", help="undo a container fault at its deadline")
    exp.add_argument("--container", required=True)
    exp.add_argument("--action", required=True, choices=("unpause", "start", "memory"))
    exp.add_argument("--deadline", type=float, required=True, help="unix time")
    exp.add_argument("--docker-host", default="")
    exp.add_argument("--memory-bytes", default="0")
    exp.add_argument("--swap-bytes", default="0")
    exp.add_argument("--journal", default="")
    exp.add_argument("--fault-id", default="")
    exp.add_argument("--fault", default="")
    exp.add_argument("--target", default="")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return expire(args)


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "FAULTS",
    "DockerCrash",
    "DockerKill",
    "DockerMemoryHog",
    "DockerMemoryLimit",
    "DockerPause",
    "DockerRestart",
    "container_cgroup_dir",
    "docker_client",
]
