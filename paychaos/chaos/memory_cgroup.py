"""The memory cgroups of the memory-pressure fault, on top of :mod:`paychaos.stack.cgroups`.

``stack/cgroups.py`` owns cgroups in this project (v1 and v2); this adapter
converts its errors into paychaos errors where they enter the chaos layer and
gives the fault and its watchdog the few calls they need.
"""

from __future__ import annotations

from pathlib import Path

from paychaos.contracts.errors import FaultInjectionFailed
from paychaos.stack.cgroups import CgroupError, MemoryCgroup, detect


class HogCgroup:
    """A memory cgroup a hog runs in: created with a limit, or attached by path."""

    def __init__(self, group: MemoryCgroup) -> None:
        self._group = group
        self.path = group.path

    def oom_kills(self) -> int:
        try:
            return self._group.oom_kills()
        except (CgroupError, ValueError):
            return 0

    def usage_bytes(self) -> int:
        try:
            return self._group.usage_bytes()
        except (CgroupError, ValueError):
            return 0

    def remove(self) -> bool:
        """Kill what is left inside and remove it; True when it is gone."""
        try:
            self._group.remove()
        except CgroupError:
            return False
        return not self.path.exists()


def create_cgroup(name: str, limit_bytes: int) -> HogCgroup:
    """A new ``paychaos-<name>-<pid>`` memory cgroup with ``limit_bytes``."""
    try:
        return HogCgroup(MemoryCgroup.create(name, limit_bytes))
    except (CgroupError, ValueError) as exc:
        raise FaultInjectionFailed(f"cannot create a memory cgroup for the hog: {exc}") from exc


def open_cgroup(path: Path) -> HogCgroup:
    """A cgroup this fault created earlier, by its directory."""
    try:
        info = detect()
    except CgroupError as exc:
        raise FaultInjectionFailed(str(exc)) from exc
    return HogCgroup(MemoryCgroup(info, path.name, owned=False))
