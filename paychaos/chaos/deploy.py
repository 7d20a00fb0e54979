"""``deploy``: a new version of the payment API rolled out under load (a MELT *event*).

Not a failure but the most common change in production, and the moment most
incidents start. A deployment here is what a platform does for one instance:

1. record the release (``version``, the ``previous`` one and the TTL) in the
   stack's release file (:mod:`paychaos.contracts.release`);
2. stop the running API gracefully (SIGTERM to its process group: uvicorn stops
   accepting, finishes the requests in flight, exits); the supervisor's restart
   policy starts the new process, which reads the release, reports
   ``shop_build_info{version}`` and logs ``deployed v2.0`` (JSON, with the version).

Reverting is a rollback: the record is marked expired and, if the deployed
process still runs, it is stopped gracefully again and restarted on the previous
version. The record's TTL holds even if the controller is gone: at the deadline
the API restarts itself onto the previous version. ``chaos_fault_active{fault=
"deploy"}`` marks the deployment's window (annotations in the report and Grafana).

Example::

    paychaos chaos inject deploy --component api --version v2.0 --for 30s
"""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paychaos.chaos import procs
from paychaos.chaos.base import Applied, Fault, InjectContext
from paychaos.chaos.params import param
from paychaos.chaos.target import FaultTarget
from paychaos.contracts.errors import FaultInjectionFailed, InvalidFault
from paychaos.contracts.release import (
    DEFAULT_VERSION,
    RELEASE_FILE_NAME,
    Release,
    check_version,
    read_release,
    write_release,
)

#: The components that read a release file (the reference payment API).
DEPLOYABLE = ("api",)


@dataclass(frozen=True)
class DeployParams:
    component: str = param("api", choices=DEPLOYABLE, help="component to roll out")
    version: str = param("v2.0", help="version label of the release (v2.0, 2.1.3, v2.0-rc.1)")


def release_path(target: FaultTarget) -> Path:
    """The release file of the target's stack (next to its ``stack.json``)."""
    procs_cfg = target.target.actuators.processes
    if procs_cfg is None or procs_cfg.state_file is None:
        raise InvalidFault(
            f"deploy: target {target.name} has no stack state directory for the release file "
            "(it needs the processes of an embedded stack)"
        )
    return procs_cfg.state_file.parent / RELEASE_FILE_NAME


class Deploy(Fault):
    name = "deploy"
    family = "release"
    description = (
        "Roll out a new version: record the release, restart gracefully; rolled back at the TTL."
    )
    params_cls = DeployParams
    metric_fault = "deploy"
    exported_by_target = False

    def validate(self) -> None:
        try:
            check_version(self.params.version)
        except ValueError as exc:
            raise InvalidFault(f"deploy: parameter version (--version): {exc}") from None

    def target_label(self) -> str:
        return f"process/{self.params.component}"

    def requires(self) -> list[str]:
        return [f"process.{self.params.component}"]

    def check(self, target: FaultTarget) -> None:
        release_path(target)
        target.process(self.params.component)

    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        path = release_path(ctx.target)
        ref = ctx.target.process(self.params.component)
        current = read_release(path)
        previous = current.effective(time.time()) if current else DEFAULT_VERSION
        if previous == self.params.version:
            raise FaultInjectionFailed(f"deploy: {self.params.version} is already running")
        applied.update(
            release_file=str(path),
            version=self.params.version,
            previous=previous,
            until_unix_s=ctx.expires_at,
            pid=ref.pid,
            starttime=ref.starttime,
        )
        write_release(path, Release(self.params.version, previous, ctx.expires_at))
        applied["recorded"] = True
        if not procs.signal_group(ref.pid, ref.starttime, signal.SIGTERM):
            raise FaultInjectionFailed(f"{ref.name} (pid {ref.pid}) exited before the restart")
        applied["restarted"] = True

    def revert(self, target: FaultTarget, applied: Mapping[str, Any]) -> dict[str, Any]:
        if not applied.get("recorded"):
            return {}
        path = Path(str(applied["release_file"]))
        version, previous = str(applied["version"]), str(applied["previous"])
        current = read_release(path)
        if current is None or current.version != version:
            return {"rolled_back": False, "reason": "another release replaced it"}
        now = time.time()
        write_release(path, Release(version, previous, until_unix_s=now))
        until = float(applied.get("until_unix_s") or 0.0)
        if now >= until:
            return {"rolled_back": True, "by": "the API at the TTL"}
        try:
            ref = target.process(self.params.component)
        except (FaultInjectionFailed, InvalidFault):
            return {"rolled_back": True, "restart": "no process to restart"}
        if ref.pid == applied.get("pid") and ref.starttime == applied.get("starttime"):
            return {"rolled_back": True, "restart": "the deployment never restarted it"}
        restarted = procs.signal_group(ref.pid, ref.starttime, signal.SIGTERM)
        return {"rolled_back": True, "restart": "graceful" if restarted else "process gone"}


FAULTS: tuple[type[Fault], ...] = (Deploy,)
