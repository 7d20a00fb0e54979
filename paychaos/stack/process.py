"""What the supervisor needs to know to run one component as its own OS process."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

RestartPolicy = Literal["no", "on-failure", "unless-stopped"]


@dataclass(frozen=True)
class ProcessSpec:
    """One component of the stack, as a command line plus how to tell it is healthy.

    Readiness: ``health_url`` answers 2xx, or, without one, ``port`` accepts TCP.
    ``stop_signal`` is sent first on stop (and by the kernel if the supervisor
    dies); SIGKILL follows after ``stop_timeout_s``. ``scratch_dir`` is a
    directory that exists for this run only (e.g. PostgreSQL's data outside the
    state dir): the supervisor removes it once it has stopped the component.

    Example::

        ProcessSpec(
            name="gateway",
            argv=(sys.executable, "-m", "paychaos.stack.gateway", "--port", "8101"),
            health_url="http://127.0.0.1:8101/healthz",
            port=8101,
        )
    """

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    health_url: str | None = None
    port: int | None = None
    metrics_path: str | None = "/metrics"
    ready_timeout_s: float = 30.0
    stop_timeout_s: float = 5.0
    restart: RestartPolicy = "no"
    user: str | None = None
    stop_signal: int = signal.SIGTERM
    scratch_dir: str | None = None
