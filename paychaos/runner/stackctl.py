"""The stack a run targets: started for the run, or reused (``paychaos up``, a test fixture).

A :class:`StackHandle` is all the runner needs: URLs, the chaos layer's
target (URLs, admin token, processes), the scrape/evaluation interval and
Alertmanager's ``group_wait`` (for detection floors), and how to stop it
(a no-op for a reused stack: the run never stops what it did not start).

Example::

    handle = start_stack(Path(".paychaos/run"))     # or reuse_daemon(Path(".paychaos"))
    try: ...
    finally: handle.close()
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from paychaos.contracts.errors import StackError
from paychaos.stack.embedded import EmbeddedStack, StackConfig, StackPorts
from paychaos.stack.monitoring.config import AlertmanagerSettings

if TYPE_CHECKING:
    from paychaos.chaos.target import StackTarget

DEFAULT_GROUP_WAIT_S = AlertmanagerSettings(webhook_url="http://127.0.0.1/").group_wait_s


@dataclass
class StackHandle:
    """A running stack as the runner sees it."""

    urls: Mapping[str, str]
    admin_token: str
    chaos_target: Callable[[], StackTarget]
    scrape_interval_s: float
    evaluation_interval_s: float
    group_wait_s: float = DEFAULT_GROUP_WAIT_S
    owned: bool = False
    tracing: bool = True
    _close: Callable[[], None] = field(default=lambda: None, repr=False)

    def close(self) -> None:
        """Stop the stack if this run started it; leave a reused one running."""
        self._close()


def from_embedded(stack: EmbeddedStack, *, owned: bool = False) -> StackHandle:
    """A handle on an :class:`EmbeddedStack` this process holds."""
    from paychaos.chaos.target import StackTarget

    return StackHandle(
        urls=dict(stack.urls),
        admin_token=stack.cfg.admin_token,
        chaos_target=lambda: StackTarget.from_embedded(stack),
        scrape_interval_s=stack.cfg.scrape_interval_s,
        evaluation_interval_s=stack.cfg.scrape_interval_s,
        owned=owned,
        tracing=stack.cfg.tracing,
        _close=stack.stop if owned else (lambda: None),
    )


def start_stack(
    state_dir: Path,
    *,
    scrape_interval_s: float = 1.0,
    gateway_latency_scale: float = 0.05,
    tracing: bool = True,
) -> StackHandle:
    """Start an embedded stack on free loopback ports, owned by this run."""
    cfg = StackConfig(
        state_dir=state_dir,
        ports=StackPorts.auto(),
        scrape_interval_s=scrape_interval_s,
        gateway_latency_scale=gateway_latency_scale,
        gateway_timeout_s=1.0,
        tracing=tracing,
    )
    stack = EmbeddedStack(cfg)
    stack.start()
    return from_embedded(stack, owned=True)


def _prometheus_interval_s(prometheus_url: str, default: float) -> tuple[float, float]:
    try:
        with urllib.request.urlopen(prometheus_url + "/api/v1/status/config", timeout=5) as r:
            text = r.read().decode()
    except (urllib.error.URLError, OSError):
        return default, default
    found = {
        key: float(m.group(2)) * (60 if m.group(3) == "m" else 1)
        for m in re.finditer(r"(scrape_interval|evaluation_interval): (\d+(?:\.\d+)?)(s|m)", text)
        for key in [m.group(1)]
    }
    return found.get("scrape_interval", default), found.get("evaluation_interval", default)


def reuse_daemon(state_dir: Path) -> StackHandle:
    """A handle on the stack ``paychaos up`` runs from ``state_dir`` (never stopped by us)."""
    from paychaos.stack.daemon import pid_alive, read_state

    state = read_state(state_dir)
    if not state or state.get("status") != "running" or not pid_alive(state.get("pid")):
        raise StackError(f"no running stack in {state_dir}; start one with: paychaos up")

    from paychaos.chaos.target import StackTarget

    urls = {str(k): str(v) for k, v in (state.get("urls") or {}).items()}
    scrape_s, eval_s = _prometheus_interval_s(urls.get("prometheus", ""), 5.0)
    return StackHandle(
        urls=urls,
        admin_token=str(state.get("admin_token", "")),
        chaos_target=lambda: StackTarget.from_state_dir(state_dir),
        scrape_interval_s=scrape_s,
        evaluation_interval_s=eval_s,
    )


def daemon_running(state_dir: Path) -> bool:
    """True when ``paychaos up`` has a stack running from ``state_dir``."""
    from paychaos.stack.daemon import pid_alive, read_state

    state = read_state(state_dir)
    return bool(state and state.get("status") == "running" and pid_alive(state.get("pid")))
