"""Start the embedded stack for a Locust run that has no ``--host``, and always stop it.

Only the process that owns the run starts it (the master, or the single
local process); ``--processes N`` forks its workers before Locust's ``init``
event and workers learn the API's URL from the master's spawn message, so
exactly one stack runs. It is started in-process with
:class:`paychaos.stack.embedded.EmbeddedStack` — its components are separate OS
processes (``subprocess`` works under gevent's monkey-patching, checked) —
and stopped on Locust's ``quitting`` event, with an ``atexit`` hook as a
second line; its children also carry ``PR_SET_PDEATHSIG``, so even a
SIGKILLed Locust leaves no component behind::

    boot = StackBoot(Path(".paychaos/locust"))
    urls = boot.start()          # {"api": "http://127.0.0.1:...", "collector": ...}
    boot.stack.target()          # the stack as a target (what the Chaos tab acts on)
    ...
    boot.stop()
"""

from __future__ import annotations

import atexit
import logging
from pathlib import Path

from paychaos.stack.embedded import EmbeddedStack, StackConfig, StackPorts

log = logging.getLogger("paychaos.traffic.stack")


class StackBoot:
    """Owns one embedded stack for the lifetime of a Locust process."""

    def __init__(
        self, state_dir: Path, *, gateway_latency_scale: float = 1.0, webapp: bool = False
    ) -> None:
        self.cfg = StackConfig(
            state_dir=state_dir,
            ports=StackPorts.auto(),
            gateway_latency_scale=gateway_latency_scale,
            webapp=webapp,  # the checkout page, for browser shoppers
        )
        self.stack: EmbeddedStack | None = None

    def start(self) -> dict[str, str]:
        """Start every component (raises :class:`~paychaos.contracts.errors.StackError` on failure)."""
        stack = EmbeddedStack(
            self.cfg, on_event=lambda kind, msg: log.debug("stack %s: %s", kind, msg)
        )
        self.stack = stack
        atexit.register(self.stop)
        log.info("starting the embedded stack in %s ...", self.cfg.state_dir)
        try:
            stack.start()
        except BaseException:
            self.stop()
            raise
        log.info(
            "embedded stack up: api %s, collector %s", stack.urls["api"], stack.urls["collector"]
        )
        return dict(stack.urls)

    def stop(self) -> None:
        """Stop every component; idempotent."""
        stack, self.stack = self.stack, None
        if stack is None:
            return
        log.info("stopping the embedded stack")
        try:
            stack.stop()
        except Exception as exc:  # stopping must not hide the run's own result
            log.error("stopping the embedded stack failed: %s", exc)
