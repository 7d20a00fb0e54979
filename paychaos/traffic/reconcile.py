"""Reconcile the shoppers' ledgers with the API's database and the gateway's ledger.

The money check of a run: what the clients saw (``ledger-*.jsonl``), what the
API recorded (``GET /api/payments/{id}``) and what the gateway charged
(``GET /v1/charges``, read once, paginated) must agree::

    report = reconcile(ledger_files(".paychaos/ledger"), "http://127.0.0.1:8000",
                       "http://127.0.0.1:8101", settle_timeout_s=20)
    assert report.ok, report.summary()

Findings:

- **lost**: the client saw 201 but the gateway has no succeeded charge for the
  key or the API's payment is not ``succeeded``; or the gateway charged but the
  API's payment is not ``succeeded`` once settled;
- **double charges**: more than one succeeded gateway charge for one
  idempotency key or one payment id (among the ledger's keys);
- **unknown**: checkouts the client never got a final answer for;
  **unsettled**: API payments still ``pending``/``unknown`` at the end.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from paychaos.contracts.errors import StackError
from paychaos.traffic.ledger import LedgerEntry, read_ledgers

_SETTLED = frozenset({"succeeded", "declined", "failed"})


@dataclass(frozen=True)
class Finding:
    """One disagreement, naming the key and what each side said."""

    kind: str
    idempotency_key: str
    method: str
    detail: str


@dataclass(frozen=True)
class ReconcileReport:
    """The outcome of :func:`reconcile`; ``ok`` when no money was lost or taken twice."""

    checkouts: int
    lost: tuple[Finding, ...]
    double_charges: tuple[Finding, ...]
    unknown: int
    unsettled: int
    mismatched: tuple[Finding, ...] = ()
    per_method: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.double_charges

    def summary(self) -> str:
        return (
            f"{self.checkouts} checkouts: {len(self.lost)} lost, "
            f"{len(self.double_charges)} double charges, {self.unknown} unknown to the client, "
            f"{self.unsettled} unsettled, {len(self.mismatched)} outcome mismatches"
        )

    def to_json(self) -> dict[str, Any]:
        def rows(items: tuple[Finding, ...]) -> list[dict[str, str]]:
            return [vars(f) for f in items]

        return {
            "ok": self.ok,
            "checkouts": self.checkouts,
            "lost": rows(self.lost),
            "double_charges": rows(self.double_charges),
            "unknown": self.unknown,
            "unsettled": self.unsettled,
            "mismatched": rows(self.mismatched),
            "per_method": self.per_method,
        }


def _get_json(url: str, timeout_s: float) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 404:
            return None
        raise StackError(f"{url} answered {exc.code}") from exc
    except (urllib.error.URLError, OSError, orjson.JSONDecodeError) as exc:
        raise StackError(f"cannot read {url}: {exc}") from exc


def gateway_charges(gateway_url: str, *, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Every charge of the gateway's ledger (cursor pagination)."""
    base = gateway_url.rstrip("/") + "/v1/charges"
    charges: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params = {"limit": "1000", **({"after": after} if after else {})}
        page = _get_json(base + "?" + urllib.parse.urlencode(params), timeout_s)
        charges.extend(page["data"])
        if not page.get("has_more"):
            return charges
        after = page["next_after"]


def _api_statuses(api_url: str, ids: Iterable[str], timeout_s: float) -> dict[str, str | None]:
    base = api_url.rstrip("/") + "/api/payments/"

    def one(pid: str) -> tuple[str, str | None]:
        body = _get_json(base + urllib.parse.quote(pid), timeout_s)
        return pid, (body or {}).get("status")

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, list(ids)))


def reconcile(
    ledger_paths: Iterable[str | Path],
    api_url: str,
    gateway_url: str,
    *,
    settle_timeout_s: float = 0.0,
    timeout_s: float = 10.0,
) -> ReconcileReport:
    """Compare the client ledgers with the API and the gateway (see the module docstring).

    ``settle_timeout_s`` waits (re-reading) for the API's reconciler to settle
    payments that are still pending/unknown before judging them.
    """
    entries: dict[str, LedgerEntry] = {e.key: e for e in read_ledgers(ledger_paths)}
    deadline = time.monotonic() + settle_timeout_s
    while True:
        charges = gateway_charges(gateway_url, timeout_s=timeout_s)
        by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        by_payment: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for charge in charges:
            by_key[charge["idempotency_key"]].append(charge)
            by_payment[str(charge["payment_id"])].append(charge)
        payment_ids: dict[str, str] = {}
        for key, entry in entries.items():
            pid = entry.payment_id or next(
                (str(c["payment_id"]) for c in by_key.get(key, ())), None
            )
            if pid:
                payment_ids[key] = pid
        api = _api_statuses(api_url, set(payment_ids.values()), timeout_s)
        unsettled = sum(1 for s in api.values() if s not in _SETTLED)
        if unsettled == 0 or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    return _judge(entries, by_key, by_payment, payment_ids, api, unsettled)


def _judge(
    entries: dict[str, LedgerEntry],
    by_key: dict[str, list[dict[str, Any]]],
    by_payment: dict[str, list[dict[str, Any]]],
    payment_ids: dict[str, str],
    api: dict[str, str | None],
    unsettled: int,
) -> ReconcileReport:
    lost: list[Finding] = []
    doubles: list[Finding] = []
    mismatched: list[Finding] = []
    per_method: dict[str, dict[str, Any]] = {}
    client_counts: dict[str, Counter[str]] = defaultdict(Counter)
    for key, entry in entries.items():
        client_counts[entry.method][entry.outcome] += 1
        succeeded = [c for c in by_key.get(key, ()) if c["status"] == "succeeded"]
        pid = payment_ids.get(key)
        api_status = api.get(pid) if pid else None
        if len(succeeded) > 1:
            doubles.append(
                Finding(
                    "double_charge",
                    key,
                    entry.method,
                    f"{len(succeeded)} succeeded charges for this key",
                )
            )
        elif pid and sum(c["status"] == "succeeded" for c in by_payment.get(pid, ())) > 1:
            doubles.append(
                Finding(
                    "double_charge",
                    key,
                    entry.method,
                    f"several succeeded charges for payment {pid}",
                )
            )
        if entry.outcome == "succeeded" and (not succeeded or api_status != "succeeded"):
            lost.append(
                Finding(
                    "lost",
                    key,
                    entry.method,
                    f"client saw 201; gateway succeeded charges {len(succeeded)}, "
                    f"API status {api_status}",
                )
            )
        elif succeeded and api_status in ("declined", "failed", None):
            lost.append(
                Finding("lost", key, entry.method, f"gateway charged but the API says {api_status}")
            )
        elif entry.outcome == "declined" and succeeded:
            mismatched.append(
                Finding("mismatch", key, entry.method, "client saw 402 but the gateway charged")
            )
    gateway_succeeded: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key in entries:
        for charge in by_key.get(key, ()):
            if charge["status"] == "succeeded":
                totals = gateway_succeeded[charge["method"]]
                totals[0] += 1
                totals[1] += int(charge["amount_cents"])
    for method in sorted(set(client_counts) | set(gateway_succeeded)):
        count, cents = gateway_succeeded.get(method, [0, 0])
        client_cents = sum(
            e.amount_cents
            for e in entries.values()
            if e.method == method and e.outcome == "succeeded"
        )
        per_method[method] = {
            "client": dict(client_counts.get(method, Counter())),
            "client_succeeded_amount_cents": client_cents,
            "gateway_succeeded": count,
            "gateway_succeeded_amount_cents": cents,
        }
    return ReconcileReport(
        checkouts=len(entries),
        lost=tuple(lost),
        double_charges=tuple(doubles),
        unknown=sum(1 for e in entries.values() if e.outcome == "unknown"),
        unsettled=unsettled,
        mismatched=tuple(mismatched),
        per_method=per_method,
    )
