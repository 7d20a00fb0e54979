"""Memory cgroups (v1 and v2): an instance boundary the kernel's OOM killer enforces.

A :class:`MemoryCgroup` is one directory in the cgroup filesystem with a memory
limit (and, where the ``cpu`` controller is available, a CPU quota). Every
process written into it is charged against the limit; when the group cannot
reclaim enough memory the kernel's own OOM killer kills a process inside it
and counts the kill (v1 ``memory.oom_control`` ``oom_kill``, v2
``memory.events`` ``oom_kill``). That is what an EC2 instance without swap
does, so the t3.medium demonstration and the memory-pressure faults use it.

Every group this module creates is named ``paychaos-<name>-<owner pid>`` so
that leftovers are recognisable and :func:`cleanup_stale` can remove those
whose owner died. A group also satisfies :class:`paychaos.stack.instance.InstanceProbe`
(``memory_used_bytes``, ``memory_limit_bytes``, ``oom_kills``, ``cpu_seconds``) and,
with a CPU quota, reports how often the kernel throttled it (:meth:`MemoryCgroup.cpu_throttling`,
from ``cpu.stat``: v1 ``nr_periods nr_throttled throttled_time``, v2 ``nr_periods
nr_throttled throttled_usec``). :func:`own_cpu_quota_group` finds the quota a process
runs under (a container started with ``--cpus``), for the host instance.

Layouts handled (``root`` is a parameter everywhere, so tests use a fake tree):

- v1: ``<root>/memory/memory.limit_in_bytes`` exists; groups are created in
  ``<root>/memory/`` and, for the quota, ``<root>/cpu/`` (or ``cpu,cpuacct``).
- v2: ``<root>/cgroup.controllers`` lists ``memory``; groups are created in
  ``<root>`` (or a delegated ``parent``), after ``+memory`` (and ``+cpu``) are
  enabled in the parent's ``cgroup.subtree_control``. Swap is turned off in
  the group (``memory.swap.max = 0``) so pressure ends in an OOM kill, as on
  an instance without swap.

Example::

    with MemoryCgroup.create("oom-demo", limit_bytes=512 * 2**20) as cg:
        proc = subprocess.Popen(argv, preexec_fn=cg.enter)   # born inside
        ...
        print(cg.usage_bytes(), cg.limit_bytes(), cg.oom_kills())
    # on exit: whatever is left inside is killed and the group removed
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "DEFAULT_ROOT",
    "PREFIX",
    "CgroupError",
    "CgroupInfo",
    "CgroupUnavailable",
    "CpuQuotaGroup",
    "CpuThrottling",
    "MemoryCgroup",
    "cleanup_stale",
    "detect",
    "list_groups",
    "own_cpu_quota_group",
]

DEFAULT_ROOT = Path("/sys/fs/cgroup")
PREFIX = "paychaos-"
CPU_PERIOD_US = 100_000
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,48}$")
_UNLIMITED_V1 = 2**62  # v1 reports "no limit" as a huge page-aligned number
CgroupVersion = Literal[1, 2]


class CgroupError(Exception):
    """A cgroup could not be created, changed, read or removed."""


class CgroupUnavailable(CgroupError):
    """No writable memory cgroup here; the message says what was looked for."""


@dataclass(frozen=True)
class CgroupInfo:
    """Which cgroup version this host runs and where the groups go.

    ``root`` is the memory controller's directory (v1: ``<mount>/memory``; v2:
    the unified mount or a delegated parent). ``cpu_root`` is where CPU quotas
    go (v1: the ``cpu`` controller's directory; v2: ``root`` when the ``cpu``
    controller is available), or None when quotas are not available.
    """

    version: CgroupVersion
    root: Path
    cpu_root: Path | None = None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise CgroupError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror or exc}") from exc


def _keyed(text: str, key: str) -> int:
    """The value of ``key`` in a ``key value`` per line file (0 when absent)."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    return 0


@dataclass(frozen=True)
class CpuThrottling:
    """The CFS bandwidth counters of a group with a CPU quota (``cpu.stat``).

    ``periods``: enforcement periods (100 ms) in which the group was runnable;
    ``throttled_periods``: those in which it used its whole quota and was held back;
    ``throttled_seconds``: the total time its processes waited for the next period.
    """

    periods: int
    throttled_periods: int
    throttled_seconds: float


def has_cpu_quota(cpu_dir: Path, version: CgroupVersion) -> bool:
    """True when the group at ``cpu_dir`` has a CFS quota (v1 ``cfs_quota_us`` > 0,
    v2 ``cpu.max`` not ``max``); False when it has none or the files are missing."""
    try:
        if version == 2:
            return (cpu_dir / "cpu.max").read_text().split()[0] != "max"
        return int((cpu_dir / "cpu.cfs_quota_us").read_text().strip()) > 0
    except (OSError, IndexError, ValueError):
        return False


def read_cpu_throttling(cpu_dir: Path, version: CgroupVersion) -> CpuThrottling:
    """The throttling counters of the group at ``cpu_dir``; :class:`CgroupError` if unreadable."""
    text = _read(cpu_dir / "cpu.stat")
    if version == 2:
        waited = _keyed(text, "throttled_usec") / 1e6
    else:
        waited = _keyed(text, "throttled_time") / 1e9
    return CpuThrottling(_keyed(text, "nr_periods"), _keyed(text, "nr_throttled"), waited)


@dataclass(frozen=True)
class CpuQuotaGroup:
    """A cgroup with a CPU quota that a process runs under (itself or an ancestor)."""

    path: Path
    version: CgroupVersion

    def cpu_throttling(self) -> CpuThrottling | None:
        try:
            return read_cpu_throttling(self.path, self.version)
        except CgroupError:
            return None  # the group went away (the container is being stopped)


def own_cpu_quota_group(
    root: Path = DEFAULT_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")
) -> CpuQuotaGroup | None:
    """The nearest group with a CPU quota containing the process ``proc_cgroup`` describes.

    Walks from the process' own ``cpu`` group (v1 ``N:cpu,cpuacct:/path``, v2
    ``0::/path``) up to the mount's root; None when no group on the way has a quota
    (no limit: nothing can throttle) or the files are not there.
    """
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, _, rest = line.partition(":")
        controllers, _, relative = rest.partition(":")
        names = controllers.split(",") if controllers else []
        if controllers and "cpu" not in names:
            continue
        version: CgroupVersion = 2 if not controllers else 1
        if version == 1:
            mounts = [root / controllers, root / "cpu", root / "cpu,cpuacct", root / "cpuacct,cpu"]
            base = next((m for m in mounts if (m / "cpu.stat").exists()), None)
        else:
            base = root if (root / "cgroup.controllers").exists() else None
        if base is None:
            continue
        here = base / relative.strip("/") if relative.strip("/") else base
        while True:
            if has_cpu_quota(here, version):
                return CpuQuotaGroup(here, version)
            if here == base or base not in here.parents:
                break
            here = here.parent
    return None


def detect(root: Path = DEFAULT_ROOT, parent: Path | None = None) -> CgroupInfo:
    """Find a usable memory cgroup hierarchy under ``root`` (v1 preferred when mounted).

    ``parent`` (v2 only) is a delegated subtree to create groups in instead of
    ``root``. Raises :class:`CgroupUnavailable` with what was looked for.
    """
    v1_memory = root / "memory"
    if (v1_memory / "memory.limit_in_bytes").exists():
        cpu_root = next(
            (
                root / name
                for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu")
                if (root / name / "cpu.cfs_quota_us").exists()
            ),
            None,
        )
        return CgroupInfo(version=1, root=v1_memory, cpu_root=cpu_root)
    base = parent or root
    controllers_file = base / "cgroup.controllers"
    if controllers_file.exists():
        controllers = _read(controllers_file).split()
        if "memory" not in controllers:
            raise CgroupUnavailable(
                f"cgroup v2 at {base} does not offer the memory controller "
                f"(cgroup.controllers: {' '.join(controllers) or 'empty'})"
            )
        return CgroupInfo(version=2, root=base, cpu_root=base if "cpu" in controllers else None)
    raise CgroupUnavailable(
        f"no memory cgroup found: neither {v1_memory}/memory.limit_in_bytes (v1) "
        f"nor {controllers_file} (v2) exists"
    )


def _owner_pid(dirname: str) -> int | None:
    _, _, tail = dirname.rpartition("-")
    return int(tail) if tail.isdigit() else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class MemoryCgroup:
    """One ``paychaos-`` memory cgroup: create, fill, measure, remove.

    Use :meth:`create` (a context manager too); :meth:`attach` wraps an
    existing group (e.g. to inspect or remove a leftover).
    """

    def __init__(self, info: CgroupInfo, dirname: str, *, owned: bool = True) -> None:
        if not dirname.startswith(PREFIX):
            raise ValueError(f"cgroup names must start with {PREFIX!r}: {dirname!r}")
        self.info = info
        self.dirname = dirname
        self.path = info.root / dirname
        self._cpu_path: Path | None = None
        if info.cpu_root is not None:
            candidate = info.cpu_root / dirname
            if info.version == 2 or candidate.exists() or owned:
                self._cpu_path = candidate
        self.cpu_quota_applied = False

    # -- lifecycle -----------------------------------------------------------------

    @classmethod
    def create(
        cls,
        name: str,
        limit_bytes: int,
        cpu_quota_cores: float | None = None,
        *,
        info: CgroupInfo | None = None,
        root: Path = DEFAULT_ROOT,
    ) -> MemoryCgroup:
        """Create ``paychaos-<name>-<pid>`` with ``limit_bytes`` and an optional CPU quota.

        The quota is applied only where a ``cpu`` controller is available
        (:attr:`cpu_quota_applied` says whether it was). Raises ``ValueError``
        on a bad name or limit, :class:`CgroupUnavailable` when there is no
        writable memory cgroup, :class:`CgroupError` when a write fails (the
        half-made group is removed first).
        """
        if not _NAME.match(name):
            raise ValueError(
                f"cgroup name {name!r} must be 1-49 of a-z 0-9 _ . - (starting with a letter/digit)"
            )
        if limit_bytes <= 0:
            raise ValueError(f"limit_bytes must be positive, got {limit_bytes}")
        if cpu_quota_cores is not None and cpu_quota_cores <= 0:
            raise ValueError(f"cpu_quota_cores must be positive, got {cpu_quota_cores}")
        info = info or detect(root)
        group = cls(info, f"{PREFIX}{name}-{os.getpid()}")
        if info.version == 2:
            group._enable_v2_controllers(cpu=cpu_quota_cores is not None)
        try:
            group.path.mkdir()
        except FileExistsError:
            raise CgroupError(f"{group.path} already exists") from None
        except OSError as exc:
            raise CgroupUnavailable(
                f"cannot create {group.path}: {exc.strerror or exc} (running as root?)"
            ) from exc
        try:
            group.set_limit(limit_bytes)
            if info.version == 2 and (group.path / "memory.swap.max").exists():
                _write(group.path / "memory.swap.max", "0")
            if info.version == 1 and (group.path / "memory.swappiness").exists():
                with contextlib.suppress(CgroupError):  # refused on the root-less hierarchies
                    _write(group.path / "memory.swappiness", "0")
            if cpu_quota_cores is not None and group._cpu_path is not None:
                group._set_cpu_quota(cpu_quota_cores)
                group.cpu_quota_applied = True
        except BaseException:
            group.remove()
            raise
        return group

    @classmethod
    def attach(cls, dirname: str, *, info: CgroupInfo | None = None) -> MemoryCgroup:
        """An existing group by directory name (not created here)."""
        return cls(info or detect(), dirname, owned=False)

    def _enable_v2_controllers(self, *, cpu: bool) -> None:
        control = self.info.root / "cgroup.subtree_control"
        wanted = ["memory"] + (["cpu"] if cpu and self.info.cpu_root is not None else [])
        enabled = _read(control).split() if control.exists() else []
        for controller in wanted:
            if controller in enabled:
                continue
            try:
                control.write_text(f"+{controller}")
            except OSError as exc:
                if controller == "cpu":
                    self.info = CgroupInfo(2, self.info.root, None)
                    self._cpu_path = None
                    continue
                raise CgroupUnavailable(
                    f"cannot enable the memory controller in {control}: "
                    f"{exc.strerror or exc} (a cgroup v2 group that holds processes cannot "
                    "delegate controllers; pass a delegated parent, e.g. a systemd "
                    "Delegate=yes slice)"
                ) from exc

    def set_cpu_quota(self, cores: float) -> bool:
        """Change the group's CPU quota to ``cores`` (a t3 out of credits drops to its
        baseline); False when the group has no CPU controller."""
        if self._cpu_path is None or not self.cpu_quota_applied:
            return False
        self._set_cpu_quota(cores)
        return True

    def _set_cpu_quota(self, cores: float) -> None:
        assert self._cpu_path is not None
        quota_us = max(1000, int(cores * CPU_PERIOD_US))
        if self.info.version == 2:
            _write(self._cpu_path / "cpu.max", f"{quota_us} {CPU_PERIOD_US}")
            return
        if not self._cpu_path.exists():
            try:
                self._cpu_path.mkdir()
            except OSError as exc:
                raise CgroupError(f"cannot create {self._cpu_path}: {exc.strerror}") from exc
        _write(self._cpu_path / "cpu.cfs_period_us", str(CPU_PERIOD_US))
        _write(self._cpu_path / "cpu.cfs_quota_us", str(quota_us))

    def __enter__(self) -> MemoryCgroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # -- membership ----------------------------------------------------------------

    def _procs_files(self) -> list[Path]:
        files = [self.path / "cgroup.procs"]
        if self.info.version == 1 and self._cpu_path is not None and self._cpu_path.exists():
            files.append(self._cpu_path / "cgroup.procs")
        return files

    def add_pid(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) into the group.

        Children it forks afterwards are born inside; ones it forked before stay
        where they are. To start a process inside, prefer ``preexec_fn=cg.enter``.
        """
        for procs in self._procs_files():
            _write(procs, str(pid))

    def enter(self) -> None:
        """Move the calling process into the group (for ``subprocess`` ``preexec_fn``).

        Uses bare ``os`` calls: it runs between fork and exec.
        """
        for procs in self._procs_files():
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)

    def pids(self) -> list[int]:
        """Processes in the group now (empty when it is gone)."""
        try:
            text = (self.path / "cgroup.procs").read_text()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CgroupError(f"cannot read {self.path / 'cgroup.procs'}: {exc}") from exc
        return [int(line) for line in text.split()]

    # -- measurements --------------------------------------------------------------

    def usage_bytes(self) -> int:
        """Memory charged to the group now (v1 ``usage_in_bytes``, v2 ``memory.current``)."""
        name = "memory.usage_in_bytes" if self.info.version == 1 else "memory.current"
        return int(_read(self.path / name).strip())

    def limit_bytes(self) -> int:
        """The memory limit (``sys.maxsize``-like huge number when unlimited)."""
        if self.info.version == 1:
            return int(_read(self.path / "memory.limit_in_bytes").strip())
        text = _read(self.path / "memory.max").strip()
        return _UNLIMITED_V1 if text == "max" else int(text)

    def set_limit(self, limit_bytes: int) -> None:
        """Change the memory limit. Lowering it below usage makes the kernel reclaim or kill."""
        if limit_bytes <= 0:
            raise ValueError(f"limit_bytes must be positive, got {limit_bytes}")
        if self.info.version == 2:
            _write(self.path / "memory.max", str(limit_bytes))
            return
        limit = self.path / "memory.limit_in_bytes"
        memsw = self.path / "memory.memsw.limit_in_bytes"
        if not memsw.exists():
            _write(limit, str(limit_bytes))
            return
        # v1 demands memsw >= memory at every step: order the two writes accordingly.
        if limit_bytes >= self.limit_bytes():
            _write(memsw, str(limit_bytes))
            _write(limit, str(limit_bytes))
        else:
            _write(limit, str(limit_bytes))
            _write(memsw, str(limit_bytes))

    def oom_kills(self) -> int:
        """Processes the kernel's OOM killer killed in this group (its own counter)."""
        if self.info.version == 1:
            return _keyed(_read(self.path / "memory.oom_control"), "oom_kill")
        return _keyed(_read(self.path / "memory.events"), "oom_kill")

    def oom_events(self) -> int:
        """Times the group hit its limit and invoked the OOM killer (v2 ``oom``; v1 failcnt)."""
        if self.info.version == 1:
            return int(_read(self.path / "memory.failcnt").strip())
        return _keyed(_read(self.path / "memory.events"), "oom")

    def cpu_throttling(self) -> CpuThrottling | None:
        """The group's CPU throttling counters; None without a CPU quota (nothing throttles)."""
        path = self._cpu_path
        if path is None or not has_cpu_quota(path, self.info.version):
            return None
        try:
            return read_cpu_throttling(path, self.info.version)
        except CgroupError:
            return None  # removed meanwhile

    # InstanceProbe (paychaos.stack.instance) -------------------------------------------------

    def memory_used_bytes(self) -> int:
        return self.usage_bytes()

    def memory_limit_bytes(self) -> int:
        return self.limit_bytes()

    def cpu_seconds(self) -> float:
        """CPU seconds of the processes alive in the group (as ``HostInstance`` counts)."""
        from paychaos.stack.instance import cpu_seconds

        return sum(cpu_seconds(pid) for pid in self.pids())

    # -- removal -------------------------------------------------------------------

    def remove(self, timeout_s: float = 10.0) -> None:
        """Kill every process left inside, then remove the group. Idempotent.

        Raises :class:`CgroupError` if processes survive ``timeout_s`` or the
        directory cannot be removed.
        """
        paths = [self.path]
        if self.info.version == 1 and self._cpu_path is not None:
            paths.append(self._cpu_path)
        deadline = time.monotonic() + timeout_s
        for path in paths:
            if not path.exists():
                continue
            _kill_all(path, deadline)
            while True:
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise CgroupError(f"cannot remove {path}: {exc.strerror}") from exc
                    _kill_all(path, deadline)
                    time.sleep(0.05)

    def __repr__(self) -> str:
        return f"MemoryCgroup(v{self.info.version}, {self.path})"


def _kill_all(path: Path, deadline: float) -> None:
    """SIGKILL everything in the group at ``path`` until it is empty (bounded)."""
    procs = path / "cgroup.procs"
    kill_file = path / "cgroup.kill"  # v2, Linux >= 5.14
    while True:
        try:
            pids = [int(line) for line in procs.read_text().split()]
        except FileNotFoundError:
            return
        except OSError as exc:
            raise CgroupError(f"cannot read {procs}: {exc}") from exc
        if not pids:
            return
        if time.monotonic() > deadline:
            raise CgroupError(f"processes {pids} in {path} survived SIGKILL")
        if kill_file.exists():
            with contextlib.suppress(OSError):
                kill_file.write_text("1")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGCONT)  # frozen/stopped processes still die of SIGKILL
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def list_groups(info: CgroupInfo | None = None) -> list[str]:
    """Names of every ``paychaos-`` group (memory or cpu hierarchy)."""
    info = info or detect()
    names: set[str] = set()
    for base in (info.root, info.cpu_root):
        if base is None or not base.is_dir():
            continue
        names.update(p.name for p in base.iterdir() if p.is_dir() and p.name.startswith(PREFIX))
    return sorted(names)


def cleanup_stale(info: CgroupInfo | None = None, *, include_live: bool = False) -> list[str]:
    """Remove ``paychaos-`` groups whose owner process is dead (all of them with
    ``include_live``), killing what is left inside. Returns the names removed.
    """
    try:
        info = info or detect()
    except CgroupUnavailable:
        return []
    removed = []
    for dirname in list_groups(info):
        owner = _owner_pid(dirname)
        if not include_live and owner is not None and _pid_alive(owner):
            continue
        MemoryCgroup(info, dirname, owned=False).remove()
        removed.append(dirname)
    return removed
