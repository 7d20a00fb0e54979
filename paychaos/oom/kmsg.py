"""The kernel's own word on who it OOM-killed: its log (``/dev/kmsg``), read as it is written.

The cgroup's ``oom_kill`` counter says *that* the kernel killed a process in the group,
not which one. The kernel logs that too, one record per kill::

    oom-kill:constraint=CONSTRAINT_MEMCG,...,oom_memcg=/paychaos-oom-a-t3.medium-123,
    task_memcg=/paychaos-oom-a-t3.medium-123,task=prometheus,pid=4242,uid=0

:class:`KernelOomLog` opens ``/dev/kmsg`` without blocking, starts at its end (only
kills from now on) and returns the records of one cgroup. Reading it needs root (or
``CAP_SYSLOG``) and a kernel that does not restrict it; when it cannot be read,
:attr:`KernelOomLog.available` is False with the reason, and the caller falls back to
matching the counter with the processes that died by SIGKILL.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass

KMSG = "/dev/kmsg"
_OOM_KILL = re.compile(
    r"oom-kill:.*?oom_memcg=(?P<memcg>[^,]*).*?,task=(?P<task>.*?),pid=(?P<pid>\d+)"
)
MAX_RECORDS_PER_POLL = 10_000


@dataclass(frozen=True)
class KernelKill:
    """One OOM kill as the kernel logged it (``ts_s``: its clock, seconds since boot)."""

    ts_s: float
    task: str
    pid: int
    memcg: str


def parse_record(record: str) -> tuple[float, str] | None:
    """``prio,seq,ts_usec,flags;message`` -> (seconds, message); None if malformed."""
    head, sep, message = record.partition(";")
    if not sep:
        return None
    fields = head.split(",")
    if len(fields) < 3:
        return None
    try:
        ts_s = int(fields[2]) / 1e6
    except ValueError:
        return None
    return ts_s, message.split("\n", 1)[0]


def parse_oom_kill(ts_s: float, message: str) -> KernelKill | None:
    match = _OOM_KILL.search(message)
    if match is None:
        return None
    return KernelKill(ts_s, match["task"], int(match["pid"]), match["memcg"])


class KernelOomLog:
    """The OOM kills the kernel logs for the cgroup named ``dirname``, from now on."""

    def __init__(self, dirname: str, path: str = KMSG) -> None:
        self.dirname = dirname
        self.fd: int | None = None
        self.reason = ""
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self.fd, 0, os.SEEK_END)
        except OSError as exc:
            self.close()
            self.reason = f"{path}: {exc.strerror or exc}"

    @property
    def available(self) -> bool:
        return self.fd is not None

    def poll(self) -> list[KernelKill]:
        """The records logged since the last poll that name this cgroup (never blocks)."""
        kills: list[KernelKill] = []
        if self.fd is None:
            return kills
        for _ in range(MAX_RECORDS_PER_POLL):
            try:
                raw = os.read(self.fd, 8192)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # records overwritten before we read them
                    continue
                self.reason = f"{KMSG}: {exc.strerror or exc}"
                self.close()
                break
            if not raw:
                break
            parsed = parse_record(raw.decode("utf-8", "replace"))
            if parsed is None:
                continue
            kill = parse_oom_kill(*parsed)
            if kill is not None and self.dirname in kill.memcg:
                kills.append(kill)
        return kills

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
