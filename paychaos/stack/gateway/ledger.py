"""Every charge the gateway created, queryable, optionally persisted as JSONL.

The ledger is the gateway's view of the money: one :class:`Charge` per charge
created (succeeded or declined), indexed by id, idempotency key and payment id,
plus running totals so :meth:`Ledger.summary` is O(methods) and never scans.

Persistence is an append-only JSON-lines file, one event per line::

    {"event": "charge", "id": "ch_...", "status": "succeeded", ...}
    {"event": "attempt", "idempotency_key": "k1", "attempts": 3}

Each line is flushed to the kernel as it is written (no fsync), so the ledger
survives a ``kill -9`` of the gateway and is reloaded at the next start. A
torn last line (killed mid-write) is skipped with a warning.

Example::

    ledger = Ledger(path=None)
    charge = ledger.record(new_charge(...))
    ledger.summary()["duplicate_charges"]   # 0
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from paychaos.contracts.errors import InvalidInput

log = logging.getLogger("paychaos.stack.gateway.ledger")

STATUSES: tuple[str, ...] = ("succeeded", "declined")


@dataclass(slots=True)
class Charge:
    """One charge as the processor recorded it.

    ``fingerprint`` is a digest of the request parameters (never the raw card
    token) used to detect an idempotency key reused with other parameters.
    """

    id: str
    status: str
    amount_cents: int
    currency: str
    method: str
    payment_id: str
    idempotency_key: str
    created_at: float
    fingerprint: str
    decline_code: str | None = None

    def response_body(self) -> dict[str, Any]:
        """The body of the 201/402 answer (identical on every replay)."""
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "amount_cents": self.amount_cents,
            "currency": self.currency,
            "method": self.method,
            "payment_id": self.payment_id,
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at,
        }
        if self.decline_code is not None:
            body["decline_code"] = self.decline_code
        return body

    def to_event(self, attempts: int) -> dict[str, Any]:
        event = {"event": "charge", **self.response_body(), "attempts": attempts}
        event["fingerprint"] = self.fingerprint
        return event


def _charge_from_event(event: dict[str, Any]) -> Charge:
    return Charge(
        id=str(event["id"]),
        status=str(event["status"]),
        amount_cents=int(event["amount_cents"]),
        currency=str(event["currency"]),
        method=str(event["method"]),
        payment_id=str(event["payment_id"]),
        idempotency_key=str(event["idempotency_key"]),
        created_at=float(event["created_at"]),
        fingerprint=str(event["fingerprint"]),
        decline_code=event.get("decline_code"),
    )


class Ledger:
    """In-memory ledger with indexes, totals and an optional JSONL journal."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._charges: list[Charge] = []
        self._position: dict[str, int] = {}
        self._first_by_key: dict[str, Charge] = {}
        self._by_key: dict[str, list[Charge]] = {}
        self._by_payment: dict[str, list[Charge]] = {}
        self._attempts: dict[str, int] = {}
        self._totals: dict[tuple[str, str], list[int]] = {}
        self._succeeded_keys: Counter[str] = Counter()
        self._succeeded_payments: Counter[str] = Counter()
        self._duplicate_charges = 0
        self._file: IO[bytes] | None = None
        if self.path is not None:
            self._load(self.path)
            self._open(self.path)

    # -- writing -------------------------------------------------------------

    def note_attempt(self, idempotency_key: str) -> int:
        """Count one more request with this key; persisted once a charge exists."""
        attempts = self._attempts.get(idempotency_key, 0) + 1
        self._attempts[idempotency_key] = attempts
        if self._file is not None and idempotency_key in self._first_by_key:
            self._write(
                {"event": "attempt", "idempotency_key": idempotency_key, "attempts": attempts}
            )
        return attempts

    def record(self, charge: Charge) -> Charge:
        """Add a newly created charge (and journal it)."""
        self._index(charge)
        if self._file is not None:
            self._write(charge.to_event(self._attempts.get(charge.idempotency_key, 1)))
        return charge

    def _index(self, charge: Charge) -> None:
        if charge.id in self._position:
            return
        self._position[charge.id] = len(self._charges)
        self._charges.append(charge)
        self._first_by_key.setdefault(charge.idempotency_key, charge)
        self._by_key.setdefault(charge.idempotency_key, []).append(charge)
        self._by_payment.setdefault(charge.payment_id, []).append(charge)
        self._attempts.setdefault(charge.idempotency_key, 1)
        totals = self._totals.setdefault((charge.method, charge.status), [0, 0])
        totals[0] += 1
        totals[1] += charge.amount_cents
        if charge.status == "succeeded":
            key_seen = self._succeeded_keys[charge.idempotency_key]
            payment_seen = self._succeeded_payments[charge.payment_id]
            if key_seen or payment_seen:
                self._duplicate_charges += 1
            self._succeeded_keys[charge.idempotency_key] = key_seen + 1
            self._succeeded_payments[charge.payment_id] = payment_seen + 1

    def _write(self, event: dict[str, Any]) -> None:
        assert self._file is not None
        try:
            self._file.write(orjson.dumps(event) + b"\n")
            self._file.flush()
        except OSError:
            log.exception("cannot append to the ledger file", extra={"path": str(self.path)})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- persistence ---------------------------------------------------------

    def _load(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise InvalidInput(f"{path}: cannot read the ledger file: {exc.strerror}") from exc
        lines = data.split(b"\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
                if event.get("event") == "attempt":
                    key = str(event["idempotency_key"])
                    self._attempts[key] = max(self._attempts.get(key, 0), int(event["attempts"]))
                else:
                    charge = _charge_from_event(event)
                    self._index(charge)
                    attempts = int(event.get("attempts", 1))
                    key = charge.idempotency_key
                    self._attempts[key] = max(self._attempts.get(key, 0), attempts)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                log.warning(
                    "skipping unreadable ledger line",
                    extra={"path": str(path), "line": number},
                )
        if self._charges:
            log.info(
                "ledger reloaded",
                extra={"path": str(path), "charges": len(self._charges)},
            )

    def _open(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("ab")
            if handle.tell() > 0:
                with path.open("rb") as check:
                    check.seek(-1, 2)
                    if check.read(1) != b"\n":
                        handle.write(b"\n")  # close a torn line before appending
        except OSError as exc:
            raise InvalidInput(f"{path}: cannot open the ledger file: {exc.strerror}") from exc
        self._file = handle

    # -- reading -------------------------------------------------------------

    def first_for_key(self, idempotency_key: str) -> Charge | None:
        return self._first_by_key.get(idempotency_key)

    def get(self, charge_id: str) -> Charge | None:
        position = self._position.get(charge_id)
        return None if position is None else self._charges[position]

    def attempts(self, idempotency_key: str) -> int:
        return self._attempts.get(idempotency_key, 0)

    def __len__(self) -> int:
        return len(self._charges)

    def view(self, charge: Charge) -> dict[str, Any]:
        """A charge as the query API shows it (response body plus ``attempts``)."""
        body = charge.response_body()
        body["attempts"] = self._attempts.get(charge.idempotency_key, 1)
        return body

    def query(
        self,
        *,
        method: str | None = None,
        status: str | None = None,
        payment_id: str | None = None,
        idempotency_key: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> tuple[list[Charge], bool]:
        """Charges matching every given filter, oldest first, after the cursor.

        Returns ``(page, has_more)``. ``after`` must be an existing charge id
        (``KeyError`` otherwise).
        """
        start = 0
        if after is not None:
            start = self._position[after] + 1
        candidates: Iterator[Charge]
        if idempotency_key is not None:
            candidates = iter(self._by_key.get(idempotency_key, ()))
        elif payment_id is not None:
            candidates = iter(self._by_payment.get(payment_id, ()))
        else:
            candidates = (self._charges[i] for i in range(start, len(self._charges)))
        page: list[Charge] = []
        for charge in candidates:
            if self._position[charge.id] < start:
                continue
            if method is not None and charge.method != method:
                continue
            if status is not None and charge.status != status:
                continue
            if payment_id is not None and charge.payment_id != payment_id:
                continue
            if idempotency_key is not None and charge.idempotency_key != idempotency_key:
                continue
            if len(page) == limit:
                return page, True
            page.append(charge)
        return page, False

    def summary(self) -> dict[str, Any]:
        """Counts and sums per method and status, and the double-charge count.

        ``duplicate_charges`` counts succeeded charges that repeat an earlier
        succeeded charge with the same idempotency key or the same payment id
        (money taken twice); it stays 0 unless idempotency is being ignored.
        """
        by_method: dict[str, dict[str, dict[str, int]]] = {}
        total_count = 0
        for (method, status), (count, amount) in sorted(self._totals.items()):
            by_method.setdefault(method, {})[status] = {"count": count, "amount_cents": amount}
            total_count += count
        by_status: dict[str, dict[str, int]] = {}
        for (_, status), (count, amount) in self._totals.items():
            entry = by_status.setdefault(status, {"count": 0, "amount_cents": 0})
            entry["count"] += count
            entry["amount_cents"] += amount
        return {
            "total_charges": total_count,
            "by_method": by_method,
            "by_status": by_status,
            "duplicate_charges": self._duplicate_charges,
            "duplicate_idempotency_keys": sum(1 for n in self._succeeded_keys.values() if n > 1),
            "duplicate_payment_ids": sum(1 for n in self._succeeded_payments.values() if n > 1),
        }
