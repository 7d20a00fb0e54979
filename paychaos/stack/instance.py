"""The instance the stack runs on, measured the USE way, and exported to Prometheus.

The embedded stack stands for one EC2 instance. :class:`HostInstance` measures
the process trees of the stack's components on this host (resident memory,
CPU seconds) against the host's memory, and counts the kernel's OOM kills
(``/proc/vmstat`` ``oom_kill``). A cgroup-bounded instance (the t3.medium
demonstration) implements the same :class:`InstanceProbe` protocol.

Exported as job ``instance``: ``instance_memory_used_bytes``,
``instance_memory_limit_bytes``, ``instance_oom_kills_total``,
``instance_cpu_seconds_total``, ``paychaos_component_up{component}``,
``paychaos_component_restarts_total{component}``; and, when the instance has a CPU
quota (a cgroup: the demonstration's instance, or a container started with
``--cpus``), the kernel's throttling counters ``instance_cpu_periods_total``,
``instance_cpu_throttled_periods_total`` and ``instance_cpu_throttled_seconds_total``
(alert ``InstanceCPUThrottled``). Without a quota they are absent: nothing throttles.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paychaos.stack.cgroups import CpuThrottling, own_cpu_quota_group

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


class InstanceProbe(Protocol):
    """What an instance reports: memory against its limit, OOM kills, CPU."""

    def memory_used_bytes(self) -> int: ...

    def memory_limit_bytes(self) -> int: ...

    def oom_kills(self) -> int: ...

    def cpu_seconds(self) -> float: ...


@runtime_checkable
class ThrottlingProbe(Protocol):
    """An instance with a CPU quota reports how often the kernel throttled it."""

    def cpu_throttling(self) -> CpuThrottling | None: ...


def _children_map(proc: Path = Path("/proc")) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(roots: Iterable[int]) -> list[int]:
    """``roots`` and all their descendants that are alive now."""
    children = _children_map()
    seen: list[int] = []
    stack = [pid for pid in roots if Path(f"/proc/{pid}").exists()]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.append(pid)
        stack.extend(children.get(pid, ()))
    return seen


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def host_memory_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def host_oom_kills() -> int:
    for line in Path("/proc/vmstat").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


class HostInstance:
    """The stack's processes on this host, with the host's memory as the limit."""

    def __init__(self, root_pids: Callable[[], Iterable[int]]) -> None:
        self._root_pids = root_pids
        self._oom_base = host_oom_kills()
        self._quota = own_cpu_quota_group()  # the components are born in this process' group

    def _pids(self) -> list[int]:
        return process_tree(pid for pid in self._root_pids() if pid)

    def memory_used_bytes(self) -> int:
        return sum(rss_bytes(pid) for pid in self._pids())

    def memory_limit_bytes(self) -> int:
        return host_memory_bytes()

    def oom_kills(self) -> int:
        return max(0, host_oom_kills() - self._oom_base)

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self._pids())

    def cpu_throttling(self) -> CpuThrottling | None:
        """Throttling of the CPU quota this host process runs under (None: no quota)."""
        return self._quota.cpu_throttling() if self._quota is not None else None


class InstanceCollector(Collector):
    """Prometheus collector for the instance and the supervisor's components."""

    def __init__(
        self, probe: InstanceProbe, components: Callable[[], list[dict[str, Any]]]
    ) -> None:
        self._probe = probe
        self._components = components

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "instance_memory_used_bytes",
            "Resident memory of every process of the stack",
            value=self._probe.memory_used_bytes(),
        )
        yield GaugeMetricFamily(
            "instance_memory_limit_bytes",
            "Memory of the instance (cgroup limit, or host memory)",
            value=self._probe.memory_limit_bytes(),
        )
        yield CounterMetricFamily(
            "instance_oom_kills",
            "Processes killed by the kernel's OOM killer",
            value=self._probe.oom_kills(),
        )
        yield CounterMetricFamily(
            "instance_cpu_seconds",
            "CPU seconds used by the stack's live processes",
            value=self._probe.cpu_seconds(),
        )
        throttling = (
            self._probe.cpu_throttling() if isinstance(self._probe, ThrottlingProbe) else None
        )
        if throttling is not None:
            yield CounterMetricFamily(
                "instance_cpu_periods",
                "CFS enforcement periods in which the instance's processes were runnable",
                value=throttling.periods,
            )
            yield CounterMetricFamily(
                "instance_cpu_throttled_periods",
                "Periods in which the instance used its whole CPU quota and was throttled",
                value=throttling.throttled_periods,
            )
            yield CounterMetricFamily(
                "instance_cpu_throttled_seconds",
                "Time the instance's processes waited, throttled, for the next period",
                value=throttling.throttled_seconds,
            )
        up = GaugeMetricFamily(
            "paychaos_component_up", "1 when the component's process is alive", labels=["component"]
        )
        restarts = CounterMetricFamily(
            "paychaos_component_restarts",
            "Restarts of the component by the supervisor",
            labels=["component"],
        )
        for row in self._components():
            up.add_metric([row["name"]], 1.0 if row["alive"] else 0.0)
            restarts.add_metric([row["name"]], float(row["restarts"]))
        yield up
        yield restarts


def instance_registry(
    probe: InstanceProbe, components: Callable[[], list[dict[str, Any]]]
) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(InstanceCollector(probe, components))
    return registry
