"""The client-side ledger: every checkout the shoppers attempted, as they saw it.

One append-only JSON-lines file per Locust process
(``<ledger-dir>/ledger-<run>-<host>-<pid>.jsonl``), one line per checkout.
Lines are buffered in memory and written in one ``write`` at least every
``flush_interval_s`` (1 s) from a background greenlet, and on :meth:`ClientLedger.flush`
/ :meth:`ClientLedger.close` (Locust's ``test_stop`` and ``quitting``): a
SIGKILLed Locust loses at most the last second of lines, never a torn file
the reader cannot skip::

    {"ts": 1714550000.12, "key": "chk-3f1a...", "method": "visa", "amount_cents": 1900,
     "currency": "USD", "attempts": 2, "outcome": "succeeded", "status": 201,
     "payment_id": "6b1f...", "trace_id": "4bf9...", "latency_ms": 812.4}

``outcome`` is ``succeeded`` (201), ``declined`` (402), ``unknown`` (no final
answer after every retry: 502/503/504/409/timeout), or ``rejected`` (400/422:
the request itself was refused). :func:`read_ledgers` reads them back for
:func:`paychaos.traffic.reconcile.reconcile`.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

OUTCOMES: tuple[str, ...] = ("succeeded", "declined", "unknown", "rejected")


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One checkout as the client saw it (``amount_cents`` in minor units)."""

    ts: float
    key: str
    method: str
    amount_cents: int
    currency: str
    attempts: int
    outcome: str
    status: int
    payment_id: str | None = None
    trace_id: str | None = None
    latency_ms: float = 0.0


class ClientLedger:
    """Appends :class:`LedgerEntry` lines to this process's file (buffered, see the module)."""

    def __init__(self, path: Path, *, flush_interval_s: float = 1.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.flush_interval_s = flush_interval_s
        self._fh: IO[bytes] | None = path.open("ab")
        self._lines: list[bytes] = []
        self._flusher: Any = None

    @classmethod
    def for_process(cls, ledger_dir: str | Path, run_id: str = "local") -> ClientLedger:
        """The ledger file of this process (run id, host and pid in its name)."""
        name = f"ledger-{run_id}-{socket.gethostname()}-{os.getpid()}.jsonl"
        return cls(Path(ledger_dir) / name)

    def write(self, entry: LedgerEntry) -> None:
        """Buffer one line; it reaches the file within ``flush_interval_s``."""
        if self._fh is None:
            return
        self._lines.append(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
        if self._flusher is None:
            self._flusher = _spawn_flusher(self)

    def flush(self) -> None:
        """Write every buffered line now (one ``write`` and a flush to the OS)."""
        if self._fh is None or not self._lines:
            return
        lines, self._lines = self._lines, []
        self._fh.write(b"".join(lines))
        self._fh.flush()

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.kill(block=False)
            self._flusher = None
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self.flush()
                self._fh.close()
            self._fh = None


def _spawn_flusher(ledger: ClientLedger) -> Any:
    """A greenlet flushing ``ledger`` every ``flush_interval_s`` (gevent: Locust processes)."""
    import gevent

    def run() -> None:
        while ledger._fh is not None:
            gevent.sleep(ledger.flush_interval_s)
            ledger.flush()

    return gevent.spawn(run)


def ledger_files(ledger_dir: str | Path, run_id: str = "*") -> list[Path]:
    """The ledger files of a run (every Locust process of it), or of every run."""
    return sorted(Path(ledger_dir).glob(f"ledger-{run_id}-*.jsonl"))


def read_ledgers(paths: Iterable[str | Path]) -> Iterator[LedgerEntry]:
    """Every entry of the given files; a torn last line (killed writer) is skipped."""
    names = {f.name for f in LedgerEntry.__dataclass_fields__.values()}
    for path in paths:
        with Path(path).open("rb") as fh:
            for line in fh:
                try:
                    data = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(data, dict):
                    yield LedgerEntry(**{k: v for k, v in data.items() if k in names})
