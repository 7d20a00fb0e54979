"""Process faults on any component of the stack (Prometheus included).

The component's process is located from the running stack (the in-process
supervisor or ``stack.json``) and its command line and start time checked
before any signal (see :mod:`paychaos.chaos.procs`). Components run in their own
process group (like a container), and signals go to the whole group.

- ``kill``: SIGKILL. The supervisor's restart policy (``unless-stopped``)
  starts it again and counts it in ``paychaos_component_restarts_total``.
- ``restart``: SIGTERM, a graceful stop; the supervisor starts it again.
- ``pause``: SIGSTOP, then SIGCONT at the deadline. A detached watchdog is
  started *before* the SIGSTOP and resumes the process at the deadline even
  if the controller was SIGKILLed; Prometheus sees ``up == 0`` meanwhile.

For ``kill`` and ``restart`` the TTL is the window the event is shown for
(``chaos_fault_active`` from the journal); reverting them is a no-op.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paychaos.chaos import procs
from paychaos.chaos.base import Applied, Fault, InjectContext
from paychaos.chaos.params import param
from paychaos.chaos.spawn import python_module_argv, spawn_detached
from paychaos.chaos.target import FaultTarget
from paychaos.contracts.domain import COMPONENTS
from paychaos.contracts.errors import FaultInjectionFailed


@dataclass(frozen=True)
class ProcessParams:
    component: str = param("gateway", choices=COMPONENTS, help="component of the stack")


class _ProcessFault(Fault):
    family = "process"
    params_cls = ProcessParams
    exported_by_target = False

    def target_label(self) -> str:
        return f"process/{self.params.component}"

    def requires(self) -> list[str]:
        return [f"process.{self.params.component}"]

    def check(self, target: FaultTarget) -> None:
        target.process(self.params.component)


class _SignalFault(_ProcessFault):
    signal_number: int = signal.SIGKILL

    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        ref = ctx.target.process(self.params.component)
        applied.update(pid=ref.pid, starttime=ref.starttime, signal=self.signal_number)
        if not procs.signal_group(ref.pid, ref.starttime, self.signal_number):
            raise FaultInjectionFailed(f"{ref.name} (pid {ref.pid}) exited before the signal")

    def revert(self, target: FaultTarget, applied: Mapping[str, Any]) -> dict[str, Any]:
        try:
            now = target.process(self.params.component)
        except (FaultInjectionFailed, KeyError):
            return {"running_again": False}
        return {"running_again": now.pid != applied.get("pid"), "new_pid": now.pid}


class Kill(_SignalFault):
    name = "kill"
    description = "SIGKILL a component; the supervisor's restart policy starts it again."
    metric_fault = "process_kill"
    signal_number = signal.SIGKILL


class Restart(_SignalFault):
    name = "restart"
    description = "SIGTERM a component (graceful stop); the supervisor starts it again."
    metric_fault = "process_restart"
    signal_number = signal.SIGTERM


class Pause(_ProcessFault):
    name = "pause"
    description = "SIGSTOP a component; a detached watchdog SIGCONTs it at the deadline."
    metric_fault = "process_pause"
    max_duration_s = 900.0

    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        ref = ctx.target.process(self.params.component)
        applied.update(pid=ref.pid, starttime=ref.starttime)
        # The watchdog first: there is never a stopped process without one.
        argv = python_module_argv(
            "paychaos.chaos.watchdog",
            "--pid",
            str(ref.pid),
            "--starttime",
            str(ref.starttime),
            "--deadline",
            repr(ctx.expires_at),
            "--action",
            "resume",
            "--journal",
            str(ctx.journal_path),
            "--fault-id",
            ctx.fault_id,
            "--fault",
            self.name,
            "--target",
            self.target_label(),
        )
        log = ctx.journal_path.parent / "watchdog.log"
        pid, ticks = spawn_detached(argv, log_path=log)
        applied.update(watch_pid=pid, watch_starttime=ticks)
        if not procs.signal_group(ref.pid, ref.starttime, signal.SIGSTOP):
            raise FaultInjectionFailed(f"{ref.name} (pid {ref.pid}) exited before SIGSTOP")
        applied["stopped"] = True
        deadline = time.monotonic() + 2.0  # the signal is delivered asynchronously
        while procs.state(ref.pid) not in ("T", "t") and time.monotonic() < deadline:
            time.sleep(0.01)
        if procs.state(ref.pid) not in ("T", "t"):
            raise FaultInjectionFailed(f"{ref.name} (pid {ref.pid}) did not stop")

    def revert(self, target: FaultTarget, applied: Mapping[str, Any]) -> dict[str, Any]:
        details: dict[str, Any] = {}
        pid, ticks = applied.get("pid"), applied.get("starttime")
        if isinstance(pid, int) and isinstance(ticks, int):
            details["resumed"] = procs.signal_group(pid, ticks, signal.SIGCONT)
        wpid, wticks = applied.get("watch_pid"), applied.get("watch_starttime")
        if isinstance(wpid, int) and isinstance(wticks, int):
            # the watchdog resumes on SIGTERM too, then exits
            procs.signal_process(wpid, wticks, signal.SIGTERM)
            details["watchdog_stopped"] = procs.wait_gone(wpid, wticks, 3.0)
        return details


FAULTS: tuple[type[Fault], ...] = (Kill, Pause, Restart)
