"""The stack a fault acts on: its URLs, admin token, processes and state directory.

Two ways to find it: an in-process :class:`~paychaos.stack.embedded.EmbeddedStack`
(tests, the Locust UI when the locustfile started the stack), or the
``stack.json`` that ``paychaos up`` records. Processes are looked up afresh
each time (the supervisor may have restarted one since).

Every URL is checked against loopback before anything is sent to it; other
hosts need an explicit allow-list (``allow_hosts``).

Example::

    target = StackTarget.from_state_dir(Path(".paychaos"))
    target.url("proxy")                 # http://127.0.0.1:8474
    target.process("gateway").pid
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paychaos.chaos.procs import ProcessRef
from paychaos.contracts.errors import FaultInjectionFailed, InvalidFault, StackError
from paychaos.stack.service import is_loopback

if TYPE_CHECKING:
    from paychaos.stack.embedded import EmbeddedStack

ProcessTable = Callable[[], Mapping[str, tuple[int | None, tuple[str, ...]]]]
"""name → (pid, argv) of every component, read when called."""


def check_host(url: str, allow_hosts: Iterable[str] = ()) -> None:
    """Refuse a non-loopback target unless its host is explicitly allowed."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if is_loopback(host) or host in set(allow_hosts):
        return
    raise InvalidFault(
        f"target {url} is not loopback; chaos targets loopback only unless the host is "
        f"allowed explicitly (--allow-host {host})"
    )


@dataclass(frozen=True)
class StackTarget:
    """Where the faults go."""

    state_dir: Path
    urls: Mapping[str, str]
    admin_token: str
    processes: ProcessTable
    allow_hosts: frozenset[str] = frozenset()
    instance_cgroup: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def chaos_dir(self) -> Path:
        return self.state_dir / "chaos"

    def url(self, name: str) -> str:
        """The URL of component ``name``, checked against the loopback rule."""
        try:
            url = self.urls[name]
        except KeyError:
            raise FaultInjectionFailed(
                f"the stack has no {name} (is it running with it enabled?)"
            ) from None
        check_host(url, self.allow_hosts)
        return url

    def component_names(self) -> list[str]:
        return sorted(self.processes())

    def process(self, name: str) -> ProcessRef:
        """The running process of component ``name``, identity-checked."""
        table = self.processes()
        if name not in table:
            raise InvalidFault(
                f"no component {name!r} in the stack; components: {', '.join(sorted(table))}"
            )
        pid, argv = table[name]
        if not pid:
            raise FaultInjectionFailed(f"{name} has no running process")
        return ProcessRef.of(pid, name=name, argv=argv)

    # -- constructors ---------------------------------------------------------------
    @classmethod
    def from_embedded(cls, stack: EmbeddedStack, *, allow_hosts: Iterable[str] = ()) -> StackTarget:
        """The stack running in this process."""

        def table() -> dict[str, tuple[int | None, tuple[str, ...]]]:
            return {
                name: (comp.pid, tuple(comp.spec.argv))
                for name, comp in stack.supervisor.components.items()
            }

        return cls(
            state_dir=stack.cfg.state_dir.resolve(),
            urls=dict(stack.urls),
            admin_token=stack.cfg.admin_token,
            processes=table,
            allow_hosts=frozenset(allow_hosts),
            instance_cgroup=getattr(stack.instance, "cgroup_path", None),
        )

    @classmethod
    def from_state_dir(cls, state_dir: Path, *, allow_hosts: Iterable[str] = ()) -> StackTarget:
        """The stack that ``paychaos up`` started from ``state_dir`` (reads ``stack.json``)."""
        path = state_dir / "stack.json"
        state = _read_json(path)
        if state is None or state.get("status") not in ("running", "starting"):
            raise StackError(
                f"no running stack in {state_dir} (start one with: paychaos up, "
                "or pass --state-dir)"
            )

        def table() -> dict[str, tuple[int | None, tuple[str, ...]]]:
            fresh = _read_json(path) or state
            comps = fresh.get("components") or {}
            return {
                name: (comp.get("pid"), tuple(comp.get("argv") or ()))
                for name, comp in comps.items()
            }

        cgroup = state.get("instance_cgroup")
        return cls(
            state_dir=Path(state.get("state_dir") or state_dir).resolve(),
            urls=dict(state.get("urls") or {}),
            admin_token=str(state.get("admin_token") or ""),
            processes=table,
            allow_hosts=frozenset(allow_hosts),
            instance_cgroup=str(cgroup) if cgroup else None,
        )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
