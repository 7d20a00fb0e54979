"""Starting the helper processes of faults (watchdogs, memory hogs).

- :func:`spawn_detached`: a grandchild in its own session, reparented away from
  the controller at once: it outlives the controller (a watchdog must) and
  leaves no child for the controller to reap.
- :func:`spawn_attached`: a direct child that the kernel kills when the
  controller's thread exits (``PR_SET_PDEATHSIG``): a memory hog of a
  controller that stays to revert.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from paychaos.chaos import procs
from paychaos.contracts.errors import FaultInjectionFailed
from paychaos.contracts.layout import SOURCE_ROOT

REPO_ROOT = SOURCE_ROOT

# fork; the parent prints the child's pid and exits; the child starts a session and execs.
_LAUNCHER = """
import os, sys
log = sys.argv[1]
pid = os.fork()
if pid:
    print(pid, flush=True)
    os._exit(0)
os.setsid()
null = os.open(os.devnull, os.O_RDWR)
out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if log else null
os.dup2(null, 0); os.dup2(out, 1); os.dup2(out, 2)
os.execv(sys.argv[2], sys.argv[2:])
"""


def helper_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if part
    )
    env.pop("COV_CORE_SOURCE", None)
    env.update(extra or {})
    return env


def python_module_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def spawn_detached(argv: Sequence[str], *, log_path: Path | None = None) -> tuple[int, int]:
    """Start ``argv`` detached (own session, not our child); returns ``(pid, starttime)``."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(log_path or ""), *argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=helper_env(),
            cwd=str(REPO_ROOT),
            timeout=15,
            check=False,
        )
        pid = int(done.stdout.decode().strip())
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise FaultInjectionFailed(f"could not start {' '.join(argv[:3])}: {exc}") from exc
    ticks = procs.starttime(pid)
    if ticks is None:
        raise FaultInjectionFailed(f"{' '.join(argv[:3])} exited at once (see {log_path})")
    return pid, ticks


def spawn_attached(argv: Sequence[str], *, log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` as our child, killed by the kernel if our thread dies."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=helper_env(),
            cwd=str(REPO_ROOT),
            start_new_session=True,
            preexec_fn=procs.die_with_parent(),
        )
    except OSError as exc:
        raise FaultInjectionFailed(f"could not start {' '.join(argv[:3])}: {exc}") from exc
    finally:
        if not isinstance(log, int):
            log.close()
