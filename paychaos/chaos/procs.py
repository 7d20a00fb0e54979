"""Process identity and signalling that never hits a recycled pid.

A process is named by ``(pid, starttime)``: the start time in clock ticks since
boot (field 22 of ``/proc/<pid>/stat``) changes when a pid is reused, so a
signal is only sent after :func:`same_process` says the pid is still the one
that was recorded.

Example::

    ref = ProcessRef.of(pid, name="gateway", argv=("python", "-m", "paychaos.stack.gateway"))
    if same_process(ref.pid, ref.starttime):
        signal_group(ref, signal.SIGSTOP)
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from paychaos.contracts.errors import FaultInjectionFailed

_PR_SET_PDEATHSIG = 1


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # fields after the ")" of the command name: [0] is state (field 3)
    return text.rsplit(")", 1)[1].split()


def starttime(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None if it is gone."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None else None


def state(pid: int) -> str | None:
    """``R``, ``S``, ``T`` (stopped), ``Z`` ... or None if the pid is gone."""
    fields = _stat_fields(pid)
    return fields[0] if fields is not None else None


def same_process(pid: int, expected_starttime: int) -> bool:
    """True when ``pid`` exists, is not a zombie, and started at ``expected_starttime``."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z" and int(fields[19]) == expected_starttime


def cmdline(pid: int) -> tuple[str, ...]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)


@dataclass(frozen=True)
class ProcessRef:
    """A process of the stack as located right now: name, pid, argv, start time."""

    name: str
    pid: int
    argv: tuple[str, ...]
    starttime: int

    @classmethod
    def of(cls, pid: int, *, name: str, argv: Sequence[str]) -> ProcessRef:
        """Locate ``pid`` and check it still runs ``argv`` (guards against pid reuse)."""
        ticks = starttime(pid)
        actual = cmdline(pid)
        if ticks is None or state(pid) == "Z":
            raise FaultInjectionFailed(f"{name}: process {pid} is not running")
        if argv and actual[: len(argv)] != tuple(argv):
            raise FaultInjectionFailed(
                f"{name}: pid {pid} runs {' '.join(actual)!r}, not the recorded "
                f"{' '.join(argv)!r}; refusing to signal it"
            )
        return cls(name=name, pid=pid, argv=tuple(argv), starttime=ticks)

    def alive(self) -> bool:
        return same_process(self.pid, self.starttime)


def signal_group(pid: int, expected_starttime: int, sig: int) -> bool:
    """Send ``sig`` to the process group led by ``pid`` if ``pid`` is still the same process.

    Components run in their own session (pgid == pid), like a container: a
    pause or kill reaches every process of the component. Falls back to the
    single process when ``pid`` leads no group. Returns False if it was gone.
    """
    if not same_process(pid, expected_starttime):
        return False
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def signal_process(pid: int, expected_starttime: int, sig: int) -> bool:
    """Send ``sig`` to ``pid`` alone if it is still the same process."""
    if not same_process(pid, expected_starttime):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn`` asking the kernel to send ``sig`` when the parent thread exits."""

    def apply() -> None:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return apply


def wait_gone(pid: int, expected_starttime: int, timeout_s: float) -> bool:
    """Wait (bounded) until the process is gone; reaps it if it is our child."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        if not same_process(pid, expected_starttime):
            return True
        time.sleep(0.05)
    return False
