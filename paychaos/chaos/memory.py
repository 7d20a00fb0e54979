"""Memory faults: a memory hog process, and a leak inside the payment API.

``memory-pressure`` starts :mod:`paychaos.chaos.hog`, which grows at ``rate_mb_per_s``
to ``max_mb`` with every page touched (resident, not just reserved):

- inside the instance's cgroup when the stack runs in one (its limit then
  applies to the stack and the hog together, as on a t3.medium);
- otherwise, with ``limit_mb`` > 0, in a new cgroup of its own with that
  limit: past it the kernel OOM-kills the hog and counts it in the cgroup's
  ``oom_kill`` counter (recorded in the journal when the fault ends);
- otherwise in the controller's own cgroup, counted in the instance's memory
  metrics as a process of the instance (the exporter adds live hogs).

Expiry: the hog's own alarm and TTL; ``PR_SET_PDEATHSIG`` while the controller
stays (``--wait``, tests, Locust UI); and a detached watchdog that kills it
after its TTL and removes its cgroup, even if the controller was SIGKILLed.

``app-leak`` asks the payment API to retain memory (``POST /admin/leak``,
bearer token); the API releases it at the TTL by itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paychaos.chaos import procs
from paychaos.chaos.base import Applied, Fault, InjectContext
from paychaos.chaos.memory_cgroup import create_cgroup, open_cgroup
from paychaos.chaos.params import param
from paychaos.chaos.spawn import python_module_argv, spawn_attached, spawn_detached
from paychaos.chaos.target import FaultTarget
from paychaos.contracts.errors import FaultInjectionFailed, InvalidFault, RollbackFailed

MIB = 1 << 20


@dataclass(frozen=True)
class MemoryPressureParams:
    rate_mb_per_s: float = param(64.0, min=1, max=4096, help="growth rate")
    max_mb: int = param(256, min=1, max=65_536, help="size to grow to, then hold")
    limit_mb: int = param(
        0, min=0, max=65_536, help="own cgroup with this limit (0: none; ignored in an instance)"
    )


class MemoryPressure(Fault):
    name = "memory-pressure"
    family = "memory"
    description = "A memory hog grows to --max-mb (resident); past a cgroup limit, a real OOM kill."
    params_cls = MemoryPressureParams
    metric_fault = "memory_pressure"
    exported_by_target = False
    max_duration_s = 1800.0

    def __init__(self, params: Any, duration_s: float) -> None:
        super().__init__(params, duration_s)
        self._proc: subprocess.Popen[bytes] | None = None

    def target_label(self) -> str:
        return "instance"

    def requires(self) -> list[str]:
        return ["memory.hog"]

    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        p: MemoryPressureParams = self.params
        cgroup = ""
        if ctx.target.instance_cgroup:
            cgroup = ctx.target.instance_cgroup
            applied.update(cgroup=cgroup, own_cgroup=False)
        elif p.limit_mb:
            group = create_cgroup(f"hog-{ctx.fault_id.replace('_', '-')}", p.limit_mb * MIB)
            cgroup = str(group.path)
            applied.update(cgroup=cgroup, own_cgroup=True)
        argv = python_module_argv(
            "paychaos.chaos.hog",
            "--rate-mb-per-s",
            str(p.rate_mb_per_s),
            "--max-mb",
            str(p.max_mb),
            "--ttl-s",
            str(ctx.ttl_s),
            "--cgroup",
            cgroup,
        )
        log = ctx.journal_path.parent / "hog.log"
        if ctx.detached:
            pid, ticks = spawn_detached(argv, log_path=log)
        else:
            self._proc = spawn_attached([*argv, "--parent-pid", str(os.getpid())], log_path=log)
            pid = self._proc.pid
            ticks = procs.starttime(pid) or 0
        applied.update(pid=pid, starttime=ticks)
        watch = python_module_argv(
            "paychaos.chaos.watchdog",
            "--pid",
            str(pid),
            "--starttime",
            str(ticks),
            "--deadline",
            repr(ctx.expires_at),
            "--action",
            "kill",
            "--cgroup",
            cgroup if applied.get("own_cgroup") else "",
            "--journal",
            str(ctx.journal_path),
            "--fault-id",
            ctx.fault_id,
            "--fault",
            self.name,
            "--target",
            self.target_label(),
        )
        wpid, wticks = spawn_detached(watch, log_path=ctx.journal_path.parent / "watchdog.log")
        applied.update(watch_pid=wpid, watch_starttime=wticks)

    def revert(self, target: FaultTarget, applied: Mapping[str, Any]) -> dict[str, Any]:
        details: dict[str, Any] = {}
        cgroup = applied.get("cgroup")
        group = open_cgroup(Path(cgroup)) if cgroup and applied.get("own_cgroup") else None
        if group is not None and group.path.exists():
            details["oom_kills"] = group.oom_kills()
            details["cgroup_usage_bytes"] = group.usage_bytes()
        pid, ticks = applied.get("pid"), applied.get("starttime")
        if isinstance(pid, int) and isinstance(ticks, int):
            details["hog_killed"] = procs.signal_process(pid, ticks, signal.SIGKILL)
            if self._proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=5)
            elif not procs.wait_gone(pid, ticks, 5.0):
                raise RollbackFailed(f"memory hog {pid} did not exit")
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)
        wpid, wticks = applied.get("watch_pid"), applied.get("watch_starttime")
        if isinstance(wpid, int) and isinstance(wticks, int):
            procs.signal_process(wpid, wticks, signal.SIGTERM)
            procs.wait_gone(wpid, wticks, 5.0)
        if group is not None:
            details["cgroup_removed"] = group.remove()
        return details


@dataclass(frozen=True)
class AppLeakParams:
    size_mb: int = param(128, min=1, max=8192, help="memory the payment API retains")


class AppLeak(Fault):
    name = "app-leak"
    family = "memory"
    description = "The payment API retains memory (a leak), released by the API at the TTL."
    params_cls = AppLeakParams
    metric_fault = "app_leak"
    exported_by_target = False
    max_duration_s = 1800.0

    def target_label(self) -> str:
        return "process/api"

    def requires(self) -> list[str]:
        return ["api.leak"]

    def check(self, target: FaultTarget) -> None:
        target.api_admin()

    def _request(self, target: FaultTarget, method: str, path: str, body: object) -> Any:
        data = None if body is None else json.dumps(body).encode()
        url, token = target.api_admin()
        req = urllib.request.Request(url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            with exc:
                text = exc.read().decode(errors="replace")
            if exc.code == 404 and method == "DELETE":
                return None
            if exc.code == 400:
                raise InvalidFault(f"the payment API refused the leak: {text}") from exc
            raise FaultInjectionFailed(f"payment API {method} {path}: {exc.code} {text}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise FaultInjectionFailed(f"payment API {method} {path}: {exc}") from exc

    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        body = {"size_mb": self.params.size_mb, "ttl_s": ctx.ttl_s}
        created = self._request(ctx.target, "POST", "/admin/leak", body)
        applied["leak_id"] = created["id"]

    def revert(self, target: FaultTarget, applied: Mapping[str, Any]) -> dict[str, Any]:
        leak_id = applied.get("leak_id")
        if not leak_id:
            return {}
        gone = self._request(target, "DELETE", f"/admin/leak/{leak_id}", None)
        return {"released": gone is not None}


FAULTS: tuple[type[Fault], ...] = (MemoryPressure, AppLeak)
