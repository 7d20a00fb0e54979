"""The chaos controller: validate, inject with a TTL, journal, revert — on every exit path.

Chaos Toolkit's habits: a pure validation pass first (:meth:`prepare`), then
the run; a half-applied fault is rolled back before the error propagates;
every fault this controller injected is reverted when it is closed (``with``),
including on an exception, Ctrl-C or SIGTERM (:func:`signals_raise`); and the
TTL held by each target is the last line of defence if the controller is
SIGKILLed.

Example::

    target = FaultTarget.from_state_dir(Path(".paychaos"))
    with ChaosController(target) as chaos, signals_raise():
        fault = chaos.prepare("db-latency", {"latency_ms": 300}, duration_s=60)
        entry = chaos.inject(fault)
        ...                       # reverted on leaving the block, whatever happens
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import Any

from paychaos.chaos.base import Applied, Fault, InjectContext
from paychaos.chaos.journal import Ending, FaultEvent, Journal, JournalEntry, journal_path
from paychaos.chaos.params import parse_params
from paychaos.chaos.registry import FaultRegistry, default_registry
from paychaos.chaos.target import FaultTarget
from paychaos.contracts.errors import (
    FaultInjectionFailed,
    InvalidFault,
    PaychaosError,
    RollbackFailed,
)

log = logging.getLogger("paychaos.chaos")


class Interrupted(KeyboardInterrupt):
    """SIGTERM/SIGHUP turned into an exception so that ``finally`` blocks revert."""


@contextlib.contextmanager
def signals_raise(
    signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGHUP),
) -> Iterator[None]:
    """Make SIGTERM/SIGHUP raise :class:`Interrupted` (SIGINT already raises) meanwhile."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(f"received {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class ChaosController:
    """Injects and reverts faults on one stack, recording everything in its journal."""

    def __init__(
        self,
        target: FaultTarget,
        *,
        registry: FaultRegistry | None = None,
        journal: Journal | None = None,
        clock: Callable[[], float] = time.time,
        detached: bool = False,
    ) -> None:
        self.target = target
        self.registry = registry or default_registry()
        self.journal = journal or Journal(journal_path(target.state_dir))
        self._clock = clock
        self.detached = detached
        self._mine: dict[str, tuple[Fault, Applied]] = {}
        self._lock = threading.RLock()

    # -- validation ---------------------------------------------------------------
    def prepare(self, name: str, params: Mapping[str, object], duration_s: float | None) -> Fault:
        """Validate a fault (name, parameters, TTL); touches nothing."""
        return self.registry.get(name).prepare(params, duration_s)

    # -- inject -------------------------------------------------------------------
    def inject(self, fault: Fault) -> JournalEntry:
        """Apply ``fault`` with its TTL; roll back and raise if any part fails."""
        fault.check(self.target)
        self.journal.path.parent.mkdir(parents=True, exist_ok=True)  # helpers log next to it
        fault_id = "f_" + secrets.token_hex(4)
        now = self._clock()
        ctx = InjectContext(
            fault_id=fault_id,
            target=self.target,
            ttl_s=fault.duration_s,
            expires_at=now + fault.duration_s,
            journal_path=self.journal.path,
            detached=self.detached,
        )
        applied: Applied = {}
        event = FaultEvent(
            ts=now,
            event="injected",
            id=fault_id,
            fault=fault.name,
            target=fault.target_label(),
            params=fault.param_dict(),
            ttl_s=fault.duration_s,
            expires_at=ctx.expires_at,
            details=applied,
        )
        with self._lock:
            try:
                fault.inject(ctx, applied)
            except BaseException as exc:
                self._roll_back(fault, event, applied, exc)
                raise self._as_failure(fault, exc) from exc
            self._mine[fault_id] = (fault, applied)
            self.journal.append(event)
        log.info("fault injected", extra={"fault_id": fault_id, "fault": fault.describe()})
        entry = self.journal.get(fault_id)
        assert entry is not None
        return entry

    def _roll_back(
        self, fault: Fault, event: FaultEvent, applied: Applied, exc: BaseException
    ) -> None:
        details: dict[str, Any] = {"applied": dict(applied), "error": f"{exc}"}
        try:
            if applied:
                details["rollback"] = fault.revert(self.target, applied)
        except Exception as rollback_exc:
            details["rollback_error"] = str(rollback_exc)
        self.journal.append(FaultEvent(**{**event.__dict__, "event": "failed", "details": details}))

    @staticmethod
    def _as_failure(fault: Fault, exc: BaseException) -> BaseException:
        if isinstance(exc, PaychaosError | KeyboardInterrupt):
            return exc
        return FaultInjectionFailed(f"{fault.name}: {type(exc).__name__}: {exc}")

    # -- revert -------------------------------------------------------------------
    def _fault_of(self, entry: JournalEntry) -> Fault:
        if entry.id in self._mine:
            return self._mine[entry.id][0]
        cls = self.registry.get(entry.fault)
        return cls(parse_params(entry.fault, cls.params_cls, entry.params), entry.ttl_s)

    def revert(self, fault_id: str) -> JournalEntry:
        """Revert one fault by id (from this or any earlier controller)."""
        with self._lock:
            entry = self.journal.get(fault_id)
            if entry is None:
                raise InvalidFault(f"no fault {fault_id!r} in {self.journal.path}")
            if entry.ended is not None:
                mine = self._mine.pop(fault_id, None)
                if mine is not None:  # ended by its target: release what we still hold
                    with contextlib.suppress(PaychaosError):
                        mine[0].revert(self.target, mine[1])
                return entry
            fault = self._fault_of(entry)
            applied = self._mine[fault_id][1] if fault_id in self._mine else entry.details
            try:
                details = fault.revert(self.target, applied)
            except PaychaosError as exc:
                raise RollbackFailed(f"{fault_id} ({entry.fault}): {exc}") from exc
            except Exception as exc:
                raise RollbackFailed(f"{fault_id} ({entry.fault}): {exc}") from exc
            ended: Ending = "reverted" if self._clock() < entry.expires_at else "expired"
            self.journal.append(
                FaultEvent(
                    ts=self._clock(),
                    event=ended,
                    id=fault_id,
                    fault=entry.fault,
                    target=entry.target,
                    details=details,
                    message="reverted by the controller" if ended == "reverted" else "",
                )
            )
            self._mine.pop(fault_id, None)
        log.info("fault reverted", extra={"fault_id": fault_id})
        result = self.journal.get(fault_id)
        assert result is not None
        return result

    def revert_all(self, *, sweep: bool = True) -> list[JournalEntry]:
        """Revert every fault of the journal not ended yet; then sweep the targets."""
        reverted: list[JournalEntry] = []
        errors: list[str] = []
        for entry in self.journal.entries():
            if entry.ended is None:
                try:
                    reverted.append(self.revert(entry.id))
                except PaychaosError as exc:
                    errors.append(str(exc))
        if sweep:
            errors.extend(self.sweep())
        if errors:
            raise RollbackFailed("; ".join(errors))
        return reverted

    def sweep(self) -> list[str]:
        """Belt and braces: remove every ``chaos-*`` toxic and gateway behaviour."""
        from paychaos.chaos.gateway import admin_for
        from paychaos.chaos.proxy.client import ProxyClient

        errors: list[str] = []
        if self.target.has_toxiproxy():
            try:
                client = ProxyClient(self.target.toxiproxy_url())
                for name, proxy in client.list().items():
                    for toxic in proxy.toxics:
                        if toxic.name.startswith("chaos-"):
                            client.remove_toxic(name, toxic.name)
            except PaychaosError as exc:
                errors.append(f"proxy sweep: {exc}")
        if self.target.has_gateway_admin():
            try:
                admin_for(self.target).clear()
            except PaychaosError as exc:
                errors.append(f"gateway sweep: {exc}")
        return errors

    # -- queries ------------------------------------------------------------------
    def active(self) -> list[JournalEntry]:
        """Faults in force now (records the expiry of those past their TTL)."""
        self.journal.record_expiries(self._clock())
        return self.journal.active(self._clock())

    def mine(self) -> list[str]:
        return list(self._mine)

    # -- lifecycle ----------------------------------------------------------------
    def close(self) -> None:
        """Revert every fault this controller injected that is still in force."""
        errors = []
        for fault_id in list(self._mine):
            try:
                self.revert(fault_id)
            except PaychaosError as exc:
                errors.append(str(exc))
        if errors:
            raise RollbackFailed("; ".join(errors))

    def __enter__(self) -> ChaosController:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
