"""``paychaos up`` in the background: a supervisor daemon that owns the stack.

The CLI starts ``python -m paychaos.stack.daemon`` in its own session; the daemon
starts the embedded stack, which records itself in ``<state-dir>/stack.json``
(:mod:`paychaos.stack.state`: the daemon's pid, the target, the components'
pids and ports), and waits. ``paychaos down`` sends it
SIGTERM; it stops every component it started and marks the state stopped.
Children carry ``PR_SET_PDEATHSIG``, so even a SIGKILLed daemon leaves no
orphan behind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from paychaos.contracts.errors import PaychaosError, StackError
from paychaos.stack.embedded import EmbeddedStack, StackConfig, StackPorts
from paychaos.stack.state import (
    StackState,
    pid_alive,
    pid_matches,
    read_state,
    state_path,
    write_state,
)


def config_to_json(cfg: StackConfig) -> str:
    data = asdict(cfg)
    data["state_dir"] = str(cfg.state_dir.resolve())
    return json.dumps(data)


def config_from_json(text: str) -> StackConfig:
    data = json.loads(text)
    data["state_dir"] = Path(data["state_dir"])
    data["ports"] = StackPorts(**data["ports"])
    data["extra_env"] = tuple(tuple(pair) for pair in data.get("extra_env", ()))
    return StackConfig(**data)


def run_daemon(cfg: StackConfig) -> int:
    """Start the stack (it records itself in ``stack.json``) and wait for SIGTERM/SIGINT."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def on_event(kind: str, message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {kind}: {message}", flush=True)

    stack = EmbeddedStack(cfg, on_event=on_event)
    try:
        stack.start()
    except PaychaosError as exc:
        return exc.exit_code
    try:
        while not stop.wait(1.0):
            pass
    finally:
        stack.stop()
    return 0


def start_background(
    cfg: StackConfig, *, timeout_s: float = 90.0, progress: Callable[[str], None] = print
) -> StackState:
    """Spawn the daemon and wait until the stack runs (or failed); return its state."""
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    existing = read_state(cfg.state_dir)
    if existing and existing.status in ("starting", "running") and pid_alive(existing.pid):
        raise StackError(
            f"a stack is already running from {cfg.state_dir} (pid {existing.pid}); "
            "stop it with: paychaos down"
        )
    state_path(cfg.state_dir).unlink(missing_ok=True)
    log = (cfg.state_dir / "daemon.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "paychaos.stack.daemon", "--config-json", config_to_json(cfg)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + timeout_s
    shown = 0
    while time.monotonic() < deadline:
        state = read_state(cfg.state_dir)
        events = state.events if state and state.pid == proc.pid else ()
        for event in events[shown:]:
            progress(f"  {event.kind:<10} {event.message}")
        shown = len(events)
        if state is not None and state.pid == proc.pid and state.status == "running":
            return state
        if state is not None and state.pid == proc.pid and state.status == "failed":
            proc.wait(timeout=10)
            raise StackError(f"the stack did not start: {state.error}")
        if proc.poll() is not None:
            raise StackError(
                f"the supervisor exited with code {proc.returncode}; "
                f"see {cfg.state_dir / 'daemon.log'}"
            )
        time.sleep(0.2)
    proc.terminate()
    proc.wait(timeout=30)
    raise StackError(f"the stack did not become ready within {timeout_s:.0f}s")


def stop_background(state_dir: Path, timeout_s: float = 60.0) -> list[str]:
    """Stop the daemon and verify its components are gone; returns what was done."""
    state = read_state(state_dir)
    if state is None:
        return ["no stack state found; nothing to stop"]
    done: list[str] = []
    pid = state.pid
    if pid_alive(pid) and pid_matches(pid, [sys.executable, "-m", "paychaos.stack.daemon"]):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        done.append(f"stopped supervisor (pid {pid})")
    # Belt and braces: anything recorded that still runs its recorded command line.
    state = read_state(state_dir) or state
    for name, comp in state.components.items():
        if comp.pid and pid_alive(comp.pid) and pid_matches(comp.pid, comp.argv):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(comp.pid, signal.SIGKILL)
            done.append(f"killed leftover {name} (pid {comp.pid})")
    if state.status != "stopped":
        write_state(state.model_copy(update={"status": "stopped", "updated_at": time.time()}))
    return done or ["stack was not running"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="paychaos stack supervisor daemon (internal)")
    parser.add_argument("--config-json", required=True)
    args = parser.parse_args(argv)
    return run_daemon(config_from_json(args.config_json))


if __name__ == "__main__":
    sys.exit(main())
