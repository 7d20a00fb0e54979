"""``--target NAME|FILE``: which deployment a command works against.

- ``embedded`` (the default): the stack ``paychaos up`` runs from the state
  directory; where none runs, a command that may start one (``paychaos run``,
  ``paychaos demo``) starts its own on free loopback ports and stops it after;
- ``docker``: the Docker stack ``paychaos up --backend docker`` runs (or, for
  ``run``, one started for the command);
- a file (``targets/staging.yaml``), or a name ``N`` for ``targets/N.yaml``:
  a deployment paychaos did not start and never stops.

Resolution is two steps, so that a command can refuse what a target cannot do
*before* anything starts: :func:`plan_target` says what the target will be
(pure for a stack not yet started), :meth:`TargetPlan.open` starts what must be
started and returns the :class:`TargetSession`.

Example::

    plan = plan_target("embedded", Path(".paychaos"), start="if-missing")
    plan.target.capabilities()
    with plan.open() as session:
        session.target.checkout.url
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from paychaos.contracts.errors import InvalidTarget, StackError
from paychaos.contracts.target import Target
from paychaos.stack.state import read_state
from paychaos.targets.load import load_target

BUILTIN = ("embedded", "docker")
TARGETS_DIR = Path("targets")
Start = Literal["never", "if-missing", "always"]


@dataclass
class TargetSession:
    """A target a command works against now, and how to end it (a no-op unless owned)."""

    target: Target
    state_dir: Path
    """Where chaos journals and run data go for this target."""
    owned: bool = False
    allow_hosts: tuple[str, ...] = ()
    _close: Callable[[], None] = field(default=lambda: None, repr=False)

    def close(self) -> None:
        """Stop what this session started; leave everything else running."""
        close, self._close = self._close, (lambda: None)
        close()

    def __enter__(self) -> TargetSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class TargetPlan:
    """What a target will be, before anything is started."""

    target: Target
    opener: Callable[[], TargetSession]
    starts: bool = False
    """True when opening starts a stack (owned by the command)."""
    discard: Callable[[], None] = field(default=lambda: None, repr=False)
    """Remove what planning prepared (a temporary state directory) when not opened."""

    def open(self) -> TargetSession:
        session = self.opener()
        self.discard = lambda: None  # the session owns the cleanup now
        return session


@dataclass(frozen=True)
class StartOptions:
    """How a stack started for one command runs."""

    scrape_interval_s: float = 1.0
    gateway_latency_scale: float = 0.05
    gateway_timeout_s: float = 1.0
    tracing: bool = True
    app: str = "python"
    """The embedded stack's payment API: ``python`` or ``nestjs`` (the seed's NestJS service)."""
    say: Callable[[str], None] = lambda _t: None


def is_builtin(ref: str | None) -> bool:
    return ref is None or ref in BUILTIN


def target_file(ref: str) -> Path:
    """The file a ``--target`` names: a path, or ``targets/NAME.yaml``."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or os.sep in ref or path.exists():
        return path
    for suffix in (".yaml", ".yml"):
        candidate = TARGETS_DIR / f"{ref}{suffix}"
        if candidate.exists():
            return candidate
    raise InvalidTarget(
        f"--target {ref}: not a built-in target ({', '.join(BUILTIN)}), "
        f"a file, or a name in {TARGETS_DIR}/ (tried {TARGETS_DIR / (ref + '.yaml')})"
    )


def plan_target(
    ref: str | None,
    state_dir: Path,
    *,
    start: Start = "never",
    options: StartOptions | None = None,
    allow_hosts: tuple[str, ...] = (),
) -> TargetPlan:
    """Resolve ``--target``; raises :class:`InvalidTarget` (a bad file) or :class:`StackError`."""
    options = options or StartOptions()
    name = ref or "embedded"
    if name not in BUILTIN:
        target = load_target(target_file(name))
        journal_dir = state_dir / "targets" / target.name
        return TargetPlan(
            target,
            lambda: TargetSession(target, journal_dir, allow_hosts=allow_hosts),
        )
    state = read_state(state_dir) if start != "always" else None
    if state is not None and state.backend == name and state.running() and state.target:
        running = state.target
        return TargetPlan(
            running,
            lambda: TargetSession(running, state.state_dir, allow_hosts=allow_hosts),
        )
    if start == "never":
        how = "paychaos up" + (" --backend docker" if name == "docker" else "")
        raise StackError(f"no running {name} stack in {state_dir}; start one with: {how}")
    return _plan_start(name, options, allow_hosts)


def _plan_start(name: str, options: StartOptions, allow_hosts: tuple[str, ...]) -> TargetPlan:
    tmp = Path(tempfile.mkdtemp(prefix="paychaos-run-"))
    state_dir = tmp / "state"
    try:
        if name == "embedded":
            plan = _plan_embedded(state_dir, options, allow_hosts)
        else:
            plan = _plan_docker(state_dir, options, allow_hosts)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    opener = plan.opener

    def open_and_clean() -> TargetSession:
        try:
            session = opener()
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        close = session._close

        def close_and_clean() -> None:
            try:
                close()
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

        session._close = close_and_clean
        return session

    plan.opener = open_and_clean
    plan.discard = lambda: shutil.rmtree(tmp, ignore_errors=True)
    return plan


def _plan_embedded(
    state_dir: Path, options: StartOptions, allow_hosts: tuple[str, ...]
) -> TargetPlan:
    from paychaos.stack.embedded import EmbeddedStack, StackConfig, StackPorts

    cfg = StackConfig(
        state_dir=state_dir,
        ports=StackPorts.auto(),
        scrape_interval_s=options.scrape_interval_s,
        gateway_latency_scale=options.gateway_latency_scale,
        gateway_timeout_s=options.gateway_timeout_s,
        tracing=options.tracing,
        app=options.app,
    )
    stack = EmbeddedStack(cfg)

    def opener() -> TargetSession:
        options.say("starting an embedded stack for this run ...")
        stack.start()
        return TargetSession(
            stack.target(), state_dir, owned=True, allow_hosts=allow_hosts, _close=stack.stop
        )

    return TargetPlan(stack.target(), opener, starts=True)


def _plan_docker(
    state_dir: Path, options: StartOptions, allow_hosts: tuple[str, ...]
) -> TargetPlan:
    from paychaos.stack.backends.docker import DockerStack, DockerStackConfig
    from paychaos.stack.embedded import StackPorts

    cfg = DockerStackConfig(
        state_dir=state_dir,
        ports=StackPorts.auto(),
        project=f"paychaos-run-{os.getpid()}",
        docker_host=os.environ.get("DOCKER_HOST", ""),
        scrape_interval_s=options.scrape_interval_s,
        gateway_latency_scale=options.gateway_latency_scale,
        gateway_timeout_s=options.gateway_timeout_s,
        tracing=options.tracing,
    )
    stack = DockerStack(cfg, log=options.say)

    def opener() -> TargetSession:
        options.say(f"starting a Docker stack for this run (project {cfg.project}) ...")
        stack.start()
        return TargetSession(
            stack.target(), state_dir, owned=True, allow_hosts=allow_hosts, _close=stack.stop
        )

    return TargetPlan(stack.target(), opener, starts=True)


__all__ = [
    "BUILTIN",
    "StartOptions",
    "TargetPlan",
    "TargetSession",
    "plan_target",
    "target_file",
]
