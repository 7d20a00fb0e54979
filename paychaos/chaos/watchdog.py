"""A detached watchdog that ends a fault at its deadline, even if its controller died.

Started by the controller in its own session (so neither Ctrl-C in the
controller's terminal nor the controller's death reaches it), it sleeps until
the deadline, then acts on the process it watches — after checking that the
pid is still the same process (start time from ``/proc/<pid>/stat``):

- ``--action resume``: ``SIGCONT`` to the process group (ends a pause). On
  SIGTERM (the controller reverting early) it resumes at once too: resuming
  twice is harmless, a forgotten pause is not.
- ``--action kill``: waits for the process (a memory hog) to exit by itself,
  ``SIGKILL``s it after the deadline plus a grace period, then removes its
  cgroup (``--cgroup``) after reading the kernel's OOM-kill counter.

It appends an ``expired`` event to the chaos journal (``--journal``) when it
ended the fault itself.

Usage::

    python -m paychaos.chaos.watchdog --pid 1234 --starttime 56789 --deadline 1718000000.0 \\
        --action resume --journal .paychaos/chaos/events.jsonl --fault-id f_ab12
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from paychaos.chaos import procs
from paychaos.chaos.journal import FaultEvent, Journal

KILL_GRACE_S = 2.0


def _journal_expired(args: argparse.Namespace, message: str, details: dict[str, Any]) -> None:
    if not args.journal or not args.fault_id:
        return
    with contextlib.suppress(OSError):
        Journal(Path(args.journal)).append(
            FaultEvent(
                ts=time.time(),
                event="expired",
                id=args.fault_id,
                fault=args.fault or "",
                target=args.target or "",
                details=details,
                message=message,
            )
        )


def _sleep_until(deadline: float, stop: list[bool], pid: int, ticks: int, watch: bool) -> None:
    while not stop and time.time() < deadline:
        if watch and not procs.same_process(pid, ticks):
            return
        time.sleep(min(0.2, max(0.0, deadline - time.time())))


def run(args: argparse.Namespace) -> int:
    stop: list[bool] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.append(True)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    if args.action == "resume":
        _sleep_until(args.deadline, stop, args.pid, args.starttime, watch=True)
        resumed = procs.signal_group(args.pid, args.starttime, signal.SIGCONT)
        if not stop:
            _journal_expired(
                args,
                "TTL reached; the watchdog resumed the process",
                {"resumed": resumed, "pid": args.pid},
            )
        return 0

    # action == "kill": a memory hog normally exits at its own TTL first
    _sleep_until(args.deadline + KILL_GRACE_S, stop, args.pid, args.starttime, watch=True)
    killed = procs.signal_process(args.pid, args.starttime, signal.SIGKILL)
    procs.wait_gone(args.pid, args.starttime, 5.0)
    details: dict[str, Any] = {"killed_by_watchdog": killed}
    if args.cgroup:
        from paychaos.chaos.memory_cgroup import open_cgroup

        group = open_cgroup(Path(args.cgroup))
        details["oom_kills"] = group.oom_kills()
        details["cgroup_removed"] = group.remove()
    if not stop:
        _journal_expired(args, "TTL reached; the hog is gone", details)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="paychaos fault watchdog (internal)")
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--starttime", type=int, required=True)
    parser.add_argument("--deadline", type=float, required=True, help="unix time")
    parser.add_argument("--action", choices=("resume", "kill"), required=True)
    parser.add_argument("--cgroup", default="", help="cgroup to remove after a kill")
    parser.add_argument("--journal", default="")
    parser.add_argument("--fault-id", default="")
    parser.add_argument("--fault", default="")
    parser.add_argument("--target", default="")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
