"""Run each component of the stack as its own OS process, watch it, stop it.

The supervisor starts components in order, waits until each is healthy (its
``health_url`` answers 2xx, or its ``port`` accepts TCP), then watches them:
a component that exits unexpectedly is reported as an event and, if its
restart policy says so, started again (like Docker's ``restart:``). Every
child runs in its own session, gets its ``stop_signal`` from the kernel if the
supervisor dies (``PR_SET_PDEATHSIG``), and is stopped by its own process
group id — never anything else.

Example::

    sup = Supervisor(specs, log_dir=Path(".paychaos/logs"))
    sup.start()          # raises ComponentFailed (and stops what it started) on failure
    ...
    sup.stop()           # also removes each component's ``scratch_dir``
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from paychaos.contracts.errors import ComponentFailed
from paychaos.stack.process import ProcessSpec

_PR_SET_PDEATHSIG = 1
EventSink = Callable[[str, str], None]
# ``child_setup(name)`` returns what to run in the child between fork and exec
# (e.g. ``MemoryCgroup.enter`` to start the component inside an instance's cgroup).
ChildSetup = Callable[[str], Callable[[], None] | None]


def _die_with_parent(sig: int, then: Callable[[], None] | None = None) -> Callable[[], None]:
    def apply() -> None:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if then is not None:
            then()

    return apply


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def remove_scratch(path: Path) -> None:
    """Remove a component's run-only directory; a process killed a moment ago may still be
    closing files in it, hence the retries."""
    for attempt in range(5):
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            if attempt == 4:
                raise
            time.sleep(0.1)


def probe(spec: ProcessSpec, timeout_s: float = 1.0) -> bool:
    """True when the component answers its health check right now."""
    if spec.health_url:
        try:
            with urllib.request.urlopen(spec.health_url, timeout=timeout_s) as resp:
                return 200 <= int(resp.status) < 300
        except (urllib.error.URLError, OSError, ValueError):
            return False
    if spec.port:
        try:
            with socket.create_connection(("127.0.0.1", spec.port), timeout=timeout_s):
                return True
        except OSError:
            return False
    return True


@dataclass
class Component:
    """A running (or dead) component and its history."""

    spec: ProcessSpec
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    exits: list[tuple[float, int]] = field(default_factory=list)
    log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Starts, watches, restarts and stops a list of components, in order."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        log_dir: Path,
        *,
        on_event: EventSink | None = None,
        poll_interval_s: float = 0.5,
        environ: dict[str, str] | None = None,
        child_setup: ChildSetup | None = None,
    ) -> None:
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"component names must be unique: {names}")
        self.log_dir = log_dir
        self.components = {
            spec.name: Component(spec, log_dir / f"{spec.name}.log") for spec in specs
        }
        self._on_event = on_event or (lambda _kind, _msg: None)
        self._poll_interval_s = poll_interval_s
        self._environ = dict(os.environ if environ is None else environ)
        self._child_setup = child_setup
        self._stopping = threading.Event()
        self._lock = threading.RLock()
        self._watcher: threading.Thread | None = None
        self._respawn: dict[str, threading.Event] = {}
        self.events: list[tuple[float, str, str]] = []

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Start every component in order and wait for each to be healthy."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            for comp in self.components.values():
                self._spawn(comp)
                self._wait_ready(comp)
                self._event("started", f"{comp.spec.name} ready (pid {comp.pid})")
        except BaseException:
            self.stop()
            raise
        self._watcher = threading.Thread(target=self._watch, name="supervisor-watch", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """Stop every component in reverse order: stop signal, then SIGKILL after its timeout."""
        self._stopping.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=5)
        with self._lock:
            for comp in reversed(list(self.components.values())):
                self._terminate(comp)
            for comp in self.components.values():
                if comp.spec.scratch_dir:
                    remove_scratch(Path(comp.spec.scratch_dir))

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- queries -------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        rows = []
        for comp in self.components.values():
            rows.append(
                {
                    "name": comp.spec.name,
                    "pid": comp.pid,
                    "alive": comp.alive,
                    "healthy": comp.alive and probe(comp.spec, timeout_s=0.5),
                    "port": comp.spec.port,
                    "restarts": comp.restarts,
                    "exits": len(comp.exits),
                    "log": str(comp.log_path),
                }
            )
        return rows

    def pid_of(self, name: str) -> int | None:
        return self.components[name].pid

    def restart(self, name: str, timeout_s: float = 30.0) -> None:
        """Stop and start one component (the ``restart`` process fault).

        The new process is spawned by the watcher thread: ``PR_SET_PDEATHSIG``
        fires when the *thread* that forked exits, so children are only ever
        forked by threads that live as long as the supervisor.
        """
        comp = self.components[name]
        done = threading.Event()
        with self._lock:
            self._terminate(comp, close_log=False)
            comp.exits.append((time.time(), comp.proc.returncode if comp.proc else 0))
            self._respawn[name] = done
        if not done.wait(timeout_s):
            raise ComponentFailed(name, "the watcher did not restart it in time")
        self._wait_ready(comp)
        self._event("restarted", f"{name} restarted on request (pid {comp.pid})")

    # -- internals -----------------------------------------------------------------

    def _event(self, kind: str, message: str) -> None:
        self.events.append((time.time(), kind, message))
        with contextlib.suppress(Exception):  # a listener must not break supervision
            self._on_event(kind, message)

    def _spawn(self, comp: Component) -> None:
        spec = comp.spec
        env = {**self._environ, **dict(spec.env)}
        if comp.log_file is None or comp.log_file.closed:
            comp.log_file = comp.log_path.open("ab")
        # Another user runs with that user's own group only (not root's group 0).
        group: int | None = None
        extra_groups: list[int] | None = None
        if spec.user is not None:
            group, extra_groups = pwd.getpwnam(spec.user).pw_gid, []
        comp.proc = subprocess.Popen(
            list(spec.argv),
            env=env,
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=comp.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=spec.user,
            group=group,
            extra_groups=extra_groups,
            preexec_fn=_die_with_parent(
                spec.stop_signal,
                self._child_setup(spec.name) if self._child_setup is not None else None,
            ),
        )
        comp.started_at = time.time()

    def _wait_ready(self, comp: Component) -> None:
        deadline = time.monotonic() + comp.spec.ready_timeout_s
        while time.monotonic() < deadline:
            if comp.proc is None or comp.proc.poll() is not None:
                code = comp.proc.returncode if comp.proc is not None else None
                raise ComponentFailed(
                    comp.spec.name,
                    f"exited with code {code} before becoming healthy; last log lines "
                    f"({comp.log_path}):\n{_log_tail(comp.log_path)}",
                )
            if probe(comp.spec):
                return
            time.sleep(0.1)
        raise ComponentFailed(
            comp.spec.name,
            f"not healthy after {comp.spec.ready_timeout_s:.0f}s "
            f"({comp.spec.health_url or comp.spec.port}); last log lines:\n"
            f"{_log_tail(comp.log_path)}",
        )

    def _terminate(self, comp: Component, close_log: bool = True) -> None:
        proc = comp.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)  # a paused process cannot exit
                os.killpg(proc.pid, comp.spec.stop_signal)
            try:
                proc.wait(timeout=comp.spec.stop_timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        # reap anything left in the component's process group (e.g. postgres backends)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if close_log and comp.log_file is not None:
            comp.log_file.close()

    def _watch(self) -> None:
        while not self._stopping.wait(self._poll_interval_s):
            with self._lock:
                for name, done in list(self._respawn.items()):
                    comp = self.components[name]
                    self._spawn(comp)
                    comp.restarts += 1
                    del self._respawn[name]
                    done.set()
                for comp in self.components.values():
                    if self._stopping.is_set():
                        return
                    proc = comp.proc
                    if proc is None or proc.poll() is None:
                        continue
                    if comp.exits and comp.exits[-1][0] >= comp.started_at:
                        continue  # already reported, not restarted
                    code = proc.returncode
                    comp.exits.append((time.time(), code))
                    how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
                    self._event("died", f"{comp.spec.name} {how}")
                    if comp.spec.restart == "unless-stopped" or (
                        comp.spec.restart == "on-failure" and code != 0
                    ):
                        self._spawn(comp)
                        comp.restarts += 1
                        self._event("restarting", f"{comp.spec.name} restarted (pid {comp.pid})")
