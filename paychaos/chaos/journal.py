"""The chaos journal: an append-only JSONL event log of injections and their ends.

Every line is one event: ``injected``, ``reverted``, ``expired`` or ``failed``,
with the fault's id, name, target, parameters, expiry and details. Folding the
events gives one :class:`JournalEntry` per fault (what it was, when it started,
when and how it ended). The file lives in ``<state-dir>/chaos/events.jsonl``,
so it survives the controller: ``paychaos chaos status`` and ``events``, the
instance exporter (``chaos_fault_active``), the watchdog and dashboards all read
or append to the same file. A fault whose expiry has passed without an end
event is *expired*: its target (proxy, gateway, watchdog, hog) held the TTL.

Writes are single ``write`` calls on an ``O_APPEND`` descriptor, so lines
from concurrent writers do not interleave.

Example::

    journal = Journal.for_state_dir(Path(".paychaos"))
    for entry in journal.entries():
        print(entry.id, entry.fault, entry.status(time.time()))
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

EVENTS_FILE = "events.jsonl"
EventKind = Literal["injected", "reverted", "expired", "failed"]
Ending = Literal["reverted", "expired", "failed"]


def journal_path(state_dir: Path) -> Path:
    return state_dir / "chaos" / EVENTS_FILE


@dataclass(frozen=True)
class FaultEvent:
    """One line of the journal."""

    ts: float
    event: EventKind
    id: str
    fault: str
    target: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    ttl_s: float = 0.0
    expires_at: float = 0.0
    details: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {
                "ts": round(self.ts, 3),
                "event": self.event,
                "id": self.id,
                "fault": self.fault,
                "target": self.target,
                "params": dict(self.params),
                "ttl_s": self.ttl_s,
                "expires_at": round(self.expires_at, 3),
                "details": dict(self.details),
                "message": self.message,
            },
            separators=(",", ":"),
            default=str,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultEvent:
        return cls(
            ts=float(data["ts"]),
            event=data["event"],
            id=str(data["id"]),
            fault=str(data["fault"]),
            target=str(data.get("target", "")),
            params=dict(data.get("params") or {}),
            ttl_s=float(data.get("ttl_s") or 0.0),
            expires_at=float(data.get("expires_at") or 0.0),
            details=dict(data.get("details") or {}),
            message=str(data.get("message") or ""),
        )


@dataclass(frozen=True)
class JournalEntry:
    """One fault's record: what, where, when it started, when and how it ended."""

    id: str
    fault: str
    target: str
    params: Mapping[str, Any]
    ttl_s: float
    injected_at: float
    expires_at: float
    details: Mapping[str, Any]
    ended_at: float | None = None
    ended: Ending | None = None
    end_details: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""

    def is_active(self, now: float) -> bool:
        """Injected, not ended, not past its expiry."""
        return self.ended is None and now < self.expires_at

    def status(self, now: float) -> str:
        if self.ended is not None:
            return self.ended
        return "active" if now < self.expires_at else "expired"

    def remaining_s(self, now: float) -> float:
        return max(0.0, self.expires_at - now) if self.ended is None else 0.0

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "fault": self.fault,
            "target": self.target,
            "params": dict(self.params),
            "ttl_s": self.ttl_s,
            "injected_at": self.injected_at,
            "expires_at": self.expires_at,
            "reverted_at": self.ended_at,
            "status": self.status(now),
            "remaining_s": round(self.remaining_s(now), 1),
            "details": {**self.details, **self.end_details},
            "message": self.message,
        }


class Journal:
    """The event log of one stack's faults."""

    def __init__(self, path: Path, *, clock: Any = time.time) -> None:
        self.path = path
        self._clock = clock

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> Journal:
        return cls(journal_path(state_dir))

    def append(self, event: FaultEvent) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (event.to_json() + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def events(self) -> list[FaultEvent]:
        return list(self._iter_events())

    def _iter_events(self) -> Iterator[FaultEvent]:
        try:
            text = self.path.read_text()
        except OSError:
            return
        for line in text.splitlines():
            try:
                yield FaultEvent.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line of a killed writer: skip it

    def entries(self) -> list[JournalEntry]:
        """Every fault, folded from its events (oldest first)."""
        entries: dict[str, JournalEntry] = {}
        for ev in self._iter_events():
            current = entries.get(ev.id)
            if ev.event == "injected" or (ev.event == "failed" and current is None):
                entries[ev.id] = JournalEntry(
                    id=ev.id,
                    fault=ev.fault,
                    target=ev.target,
                    params=ev.params,
                    ttl_s=ev.ttl_s,
                    injected_at=ev.ts,
                    expires_at=ev.expires_at,
                    details=ev.details,
                    ended_at=ev.ts if ev.event == "failed" else None,
                    ended="failed" if ev.event == "failed" else None,
                    message=ev.message,
                )
            elif current is not None and current.ended is None:
                entries[ev.id] = JournalEntry(
                    **{
                        **current.__dict__,
                        "ended_at": ev.ts,
                        "ended": ev.event,
                        "end_details": ev.details,
                        "message": ev.message or current.message,
                    }
                )
        return list(entries.values())

    def get(self, fault_id: str) -> JournalEntry | None:
        for entry in self.entries():
            if entry.id == fault_id:
                return entry
        return None

    def active(self, now: float | None = None) -> list[JournalEntry]:
        moment = self._clock() if now is None else now
        return [entry for entry in self.entries() if entry.is_active(moment)]

    def record_expiries(self, now: float | None = None) -> list[JournalEntry]:
        """Append an ``expired`` event (at the expiry time) for faults past their TTL."""
        moment = self._clock() if now is None else now
        done = []
        for entry in self.entries():
            if entry.ended is None and moment >= entry.expires_at:
                self.append(
                    FaultEvent(
                        ts=entry.expires_at,
                        event="expired",
                        id=entry.id,
                        fault=entry.fault,
                        target=entry.target,
                        message="TTL reached; the target removed the fault by itself",
                    )
                )
                done.append(entry)
        return done
