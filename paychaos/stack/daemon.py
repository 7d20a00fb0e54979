"""``paychaos up`` in the background: a supervisor daemon that owns the stack.

The CLI starts ``python -m paychaos.stack.daemon`` in its own session; the daemon
starts the embedded stack, writes ``<state-dir>/stack.json`` (its pid, the
components' pids, ports and URLs) and waits. ``paychaos down`` sends it
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
from typing import Any

from paychaos.contracts.errors import PaychaosError, StackError
from paychaos.stack.embedded import EmbeddedStack, StackConfig, StackPorts

STATE_FILE = "stack.json"


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


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def write_state(state_dir: Path, state: dict[str, Any]) -> None:
    path = state_path(state_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)


def read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(state_path(state_dir).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def pid_matches(pid: int, argv: list[str]) -> bool:
    """True when ``pid`` still runs ``argv`` (guards against a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return [part.decode(errors="replace") for part in cmdline if part][: len(argv)] == argv


def run_daemon(cfg: StackConfig) -> int:
    """Start the stack, record it, and wait for SIGTERM/SIGINT."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    events: list[dict[str, Any]] = []
    base = {"pid": os.getpid(), "started_at": time.time(), "status": "starting"}

    def on_event(kind: str, message: str) -> None:
        events.append({"ts": time.time(), "kind": kind, "message": message})
        print(f"{time.strftime('%H:%M:%S')} {kind}: {message}", flush=True)
        with contextlib.suppress(OSError):
            write_state(cfg.state_dir, {**base, **stack.describe(), "events": events[-50:]})

    stack = EmbeddedStack(cfg, on_event=on_event)
    write_state(cfg.state_dir, {**base, **stack.describe(), "events": events})
    try:
        stack.start()
    except PaychaosError as exc:
        write_state(
            cfg.state_dir, {**base, "status": "failed", "error": str(exc), "events": events}
        )
        return exc.exit_code
    base["status"] = "running"
    write_state(cfg.state_dir, {**base, **stack.describe(), "events": events})
    try:
        while not stop.wait(1.0):
            pass
    finally:
        base["status"] = "stopping"
        write_state(cfg.state_dir, {**base, **stack.describe(), "events": events})
        stack.stop()
        base["status"] = "stopped"
        write_state(cfg.state_dir, {**base, **stack.describe(), "events": events})
    return 0


def start_background(
    cfg: StackConfig, *, timeout_s: float = 90.0, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """Spawn the daemon and wait until the stack runs (or failed); return its state."""
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    existing = read_state(cfg.state_dir)
    if (
        existing
        and existing.get("status") in ("starting", "running")
        and pid_alive(existing.get("pid"))
    ):
        raise StackError(
            f"a stack is already running from {cfg.state_dir} (supervisor pid {existing['pid']}); "
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
        state = read_state(cfg.state_dir) or {}
        events = state.get("events", [])
        for event in events[shown:]:
            progress(f"  {event['kind']:<10} {event['message']}")
        shown = len(events)
        if state.get("status") == "running":
            return state
        if state.get("status") == "failed":
            proc.wait(timeout=10)
            raise StackError(f"the stack did not start: {state.get('error')}")
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
    pid = state.get("pid")
    if (
        isinstance(pid, int)
        and pid_alive(pid)
        and pid_matches(pid, [sys.executable, "-m", "paychaos.stack.daemon"])
    ):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        done.append(f"stopped supervisor (pid {pid})")
    # Belt and braces: anything recorded that still runs its recorded command line.
    for name, comp in (state.get("components") or {}).items():
        cpid = comp.get("pid")
        if cpid and pid_alive(cpid) and pid_matches(cpid, comp.get("argv", [])):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(cpid, signal.SIGKILL)
            done.append(f"killed leftover {name} (pid {cpid})")
    state["status"] = "stopped"
    write_state(state_dir, state)
    return done or ["stack was not running"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="paychaos stack supervisor daemon (internal)")
    parser.add_argument("--config-json", required=True)
    args = parser.parse_args(argv)
    return run_daemon(config_from_json(args.config_json))


if __name__ == "__main__":
    sys.exit(main())
