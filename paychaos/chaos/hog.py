"""A memory hog: grows at a given rate to a given size, pages touched so they are resident.

Started by the ``memory-pressure`` fault; it is its own last line of defence:

- ``signal.alarm`` at its TTL (+1 s): the kernel ends it even if this loop is
  stuck — SIGALRM's default action terminates the process;
- it exits by itself at its TTL;
- it joins ``--cgroup`` (writing its pid to ``cgroup.procs``) *before*
  allocating, so every byte is charged to that cgroup; past the cgroup's limit
  the kernel OOM-kills it and counts it (``oom_kill`` in ``memory.events`` v2 /
  ``memory.oom_control`` v1);
- with ``--parent-pid``, it exits if that parent is already gone (the
  ``PR_SET_PDEATHSIG`` set at spawn covers the parent dying later).

Usage::

    python -m paychaos.chaos.hog --rate-mb-per-s 50 --max-mb 256 --ttl-s 60 [--cgroup DIR]
"""

from __future__ import annotations

import argparse
import math
import mmap
import os
import signal
import sys
import time
from pathlib import Path

MIB = 1 << 20
TICK_S = 0.1


def touch(buf: bytearray) -> None:
    """Write one byte per page so that the kernel really backs the memory."""
    step = mmap.PAGESIZE
    buf[::step] = b"\x01" * len(range(0, len(buf), step))


def run(rate_mb_per_s: float, max_mb: int, ttl_s: float, cgroup: str, parent_pid: int) -> int:
    signal.alarm(math.ceil(ttl_s) + 1)
    if parent_pid and os.getppid() != parent_pid:
        return 0  # the controller died before PR_SET_PDEATHSIG took effect
    if cgroup:
        (Path(cgroup) / "cgroup.procs").write_text(str(os.getpid()))
    deadline = time.monotonic() + ttl_s
    chunks: list[bytearray] = []
    held = 0
    per_tick = max(1, int(rate_mb_per_s * MIB * TICK_S))
    limit = max_mb * MIB
    print(f"hog {os.getpid()}: {rate_mb_per_s} MB/s to {max_mb} MB for {ttl_s}s", flush=True)
    while time.monotonic() < deadline:
        started = time.monotonic()
        if held < limit:
            chunk = bytearray(min(per_tick, limit - held))
            touch(chunk)
            chunks.append(chunk)
            held += len(chunk)
            if held >= limit:
                print(f"hog {os.getpid()}: holding {held // MIB} MB", flush=True)
        time.sleep(
            max(0.0, min(TICK_S - (time.monotonic() - started), deadline - time.monotonic()))
        )
    print(f"hog {os.getpid()}: TTL reached, exiting", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="paychaos memory hog (internal)")
    parser.add_argument("--rate-mb-per-s", type=float, required=True)
    parser.add_argument("--max-mb", type=int, required=True)
    parser.add_argument("--ttl-s", type=float, required=True)
    parser.add_argument("--cgroup", default="", help="cgroup directory to join first")
    parser.add_argument("--parent-pid", type=int, default=0)
    args = parser.parse_args(argv)
    if args.rate_mb_per_s <= 0 or args.max_mb <= 0 or args.ttl_s <= 0:
        parser.error("--rate-mb-per-s, --max-mb and --ttl-s must be positive")
    return run(args.rate_mb_per_s, args.max_mb, args.ttl_s, args.cgroup, args.parent_pid)


if __name__ == "__main__":
    sys.exit(main())
