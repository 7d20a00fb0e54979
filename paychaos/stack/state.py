"""The one state file of a running built-in stack: ``<state-dir>/stack.json``, typed.

Written by whoever holds the stack (the ``paychaos up`` daemon, a test, the
Locust master, the Docker backend) at every change, read by every command
that works against it. It records the stack's :class:`~paychaos.contracts.target.Target`
(what every command needs) and the components (their pids, for the process
faults, and for ``paychaos status``). Secrets are not in it: the target only
references them (the admin token is a file of mode 0600 beside it).

Example::

    state = read_state(Path(".paychaos"))
    if state and state.running():
        state.target.checkout.url
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from paychaos.contracts.target import Target

STATE_FILE = "stack.json"
SECRET_DIR = "secrets"
ADMIN_TOKEN_FILE = "admin-token"

Status = Literal["starting", "running", "stopping", "stopped", "failed"]


class ComponentState(BaseModel):
    """One component: its process (or container) as last seen."""

    model_config = ConfigDict(frozen=True)

    pid: int | None = None
    argv: tuple[str, ...] = ()
    port: int | None = None
    restarts: int = 0
    exits: int = 0
    container: str | None = None
    status: str | None = None
    """A container's status (running, exited, ...); None for a process."""


class StackEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    ts: float
    kind: str
    message: str


class StackState(BaseModel):
    """What ``stack.json`` holds."""

    model_config = ConfigDict(frozen=True)

    backend: Literal["embedded", "docker"]
    status: Status
    pid: int = Field(description="the process that holds the stack (daemon, test, Locust)")
    started_at: float
    updated_at: float = 0.0
    state_dir: Path
    target: Target | None = None
    components: dict[str, ComponentState] = Field(default_factory=dict)
    events: tuple[StackEvent, ...] = ()
    error: str | None = None
    project: str | None = None
    """The Docker project (containers are labelled with it)."""
    ports: dict[str, int] = Field(default_factory=dict)
    app: str = "python"
    """The Docker stack's payment API (``python`` or ``nestjs``)."""
    webapp: bool = False
    """Whether the Docker stack serves the checkout page."""

    def running(self) -> bool:
        """True while the stack is said to run and its holder lives.

        A Docker stack's containers live on their own: its holder (``paychaos up``)
        may have exited long ago.
        """
        if self.status != "running":
            return False
        return self.backend == "docker" or pid_alive(self.pid)


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def write_state(state: StackState) -> None:
    """Replace ``stack.json`` atomically."""
    path = state_path(state.state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    tmp.replace(path)


def read_state(state_dir: Path) -> StackState | None:
    """The recorded state, or ``None`` when there is none (or it is unreadable)."""
    try:
        return StackState.model_validate_json(state_path(state_dir).read_bytes())
    except (OSError, ValueError, ValidationError):
        return None


def admin_token_file(state_dir: Path, *, create: bool = False) -> Path:
    """The stack's admin token (mode 0600), made on first use when ``create``."""
    path = state_dir.resolve() / SECRET_DIR / ADMIN_TOKEN_FILE
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(16))
    return path


def pid_alive(pid: int | None) -> bool:
    """True when ``pid`` runs and is not a zombie."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def pid_matches(pid: int, argv: list[str] | tuple[str, ...]) -> bool:
    """True when ``pid`` still runs ``argv`` (guards against a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return [part.decode(errors="replace") for part in cmdline if part][: len(argv)] == list(argv)


__all__ = [
    "STATE_FILE",
    "ComponentState",
    "StackEvent",
    "StackState",
    "admin_token_file",
    "pid_alive",
    "pid_matches",
    "read_state",
    "state_path",
    "write_state",
]
