"""Reconcile the shoppers' ledgers with the shop (read back) and, where there is one, the
gateway simulator's ledger.

The money check of a run: what the clients saw (``ledger-*.jsonl``) and what
the shop says when each payment is read back through the target's adapter
(``read_back``; paychaos' own API: ``GET /api/payments/{id}``) must agree;
with the gateway simulator's ledger (``GET /v1/charges``, read once,
paginated; a target with ``gateway_admin``, capability ``gateway.ledger``),
no key may be charged twice::

    client = CheckoutClient(target.checkout)          # its adapter says how to read back
    report = reconcile(ledger_files(".paychaos/ledger"), client,
                       "http://127.0.0.1:8101", settle_timeout_s=20)   # or None: no gateway
    assert report.ok, report.summary()

Findings:

- **lost**: the client saw *charged* but the read-back says the payment is
  not charged (or there is no such payment); or, once settled, the read-back
  says charged where the client saw declined or rejected; with the gateway's
  ledger also: the client saw charged but the gateway has no succeeded charge
  for the key, or the gateway charged but the shop says declined, failed or
  nothing;
- **double charges** (only with the gateway's ledger; otherwise reported as
  *not checked*): more than one succeeded gateway charge for one idempotency
  key or one payment id (among the ledger's keys);
- **unknown**: checkouts the client never got a final answer for;
  **unsettled**: payments the shop still calls ``pending``/``unknown`` at the
  end (paychaos' own API); **unverified**: checkouts the client saw charged
  without a payment id to read back (the adapter's ``payment_id`` found none).

A target whose adapter cannot read a payment back (no ``read_back``, not
paychaos' own API) cannot be reconciled: :func:`reconcile` raises
:class:`~paychaos.contracts.errors.InvalidTarget` saying so.
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

from paychaos.contracts.errors import InvalidTarget, StackError
from paychaos.contracts.target import Checkout
from paychaos.traffic.adapter import CheckoutClient, ReadBackCall
from paychaos.traffic.ledger import LedgerEntry, read_ledgers

#: The built-in API's settled payment states (others are still pending or unknown).
_SETTLED = frozenset({"succeeded", "declined", "failed"})
NO_GATEWAY = "double charges not checked (the target has no gateway ledger: gateway.ledger)"


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
    double_charges_checked: bool = True
    """False without the gateway's ledger: double charges could not be counted."""
    unverified: int = 0

    @property
    def ok(self) -> bool:
        return not self.lost and not self.double_charges

    def summary(self) -> str:
        doubles = (
            f"{len(self.double_charges)} double charges"
            if self.double_charges_checked
            else NO_GATEWAY
        )
        text = (
            f"{self.checkouts} checkouts: {len(self.lost)} lost, {doubles}, "
            f"{self.unknown} unknown to the client, {self.unsettled} unsettled, "
            f"{len(self.mismatched)} outcome mismatches"
        )
        if self.unverified:
            text += f", {self.unverified} charged without a payment id to read back"
        return text

    def to_json(self) -> dict[str, Any]:
        def rows(items: tuple[Finding, ...]) -> list[dict[str, str]]:
            return [vars(f) for f in items]

        return {
            "ok": self.ok,
            "checkouts": self.checkouts,
            "lost": rows(self.lost),
            "double_charges": rows(self.double_charges),
            "double_charges_checked": self.double_charges_checked,
            "unverified": self.unverified,
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


def _read_back(call: ReadBackCall, pid: str, timeout_s: float) -> str | None:
    """The payment's state as the shop reads it back; None when it has no such payment."""
    req = call.request(pid)
    request = urllib.request.Request(req.url, headers=dict(req.headers), method="GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            return call.state(resp.status, resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            if exc.code in (404, 410):
                return None
            raise StackError(f"reading payment {pid} back: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise StackError(f"reading payment {pid} back from {call.spec.path}: {exc}") from None


def _read_states(call: ReadBackCall, ids: Iterable[str], timeout_s: float) -> dict[str, str | None]:
    def one(pid: str) -> tuple[str, str | None]:
        return pid, _read_back(call, pid, timeout_s)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, list(ids)))


def reading_client(checkout: CheckoutClient | Checkout | str) -> CheckoutClient:
    """A :class:`CheckoutClient` for ``checkout`` (a URL is paychaos' own API there)."""
    if isinstance(checkout, CheckoutClient):
        return checkout
    if isinstance(checkout, str):
        checkout = Checkout(url=checkout)
    return CheckoutClient(checkout)


def reconcile(
    ledger_paths: Iterable[str | Path],
    checkout: CheckoutClient | Checkout | str,
    gateway_url: str | None = None,
    *,
    settle_timeout_s: float = 0.0,
    timeout_s: float = 10.0,
) -> ReconcileReport:
    """Compare the client ledgers with the shop's read-back and, given ``gateway_url``, the
    gateway's ledger (see the module docstring).

    ``checkout`` is the target's checkout API (a client, its :class:`Checkout`, or the
    URL of paychaos' own API). ``settle_timeout_s`` waits (re-reading) for payments the
    shop still calls pending/unknown to settle before judging them. Raises
    :class:`InvalidTarget` when the adapter cannot read a payment back,
    :class:`StackError` when the shop or the gateway cannot be read.
    """
    client = reading_client(checkout)
    call = client.read_back
    if call is None:
        raise InvalidTarget(
            "the target's checkout adapter has no read_back: payments cannot be read back, "
            "so the client ledger cannot be reconciled (add adapter.read_back)"
        )
    builtin = client.adapter.builtin
    entries: dict[str, LedgerEntry] = {e.key: e for e in read_ledgers(ledger_paths)}
    deadline = time.monotonic() + settle_timeout_s
    while True:
        by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        by_payment: dict[str, list[dict[str, Any]]] = defaultdict(list)
        if gateway_url:
            for charge in gateway_charges(gateway_url, timeout_s=timeout_s):
                by_key[charge["idempotency_key"]].append(charge)
                by_payment[str(charge["payment_id"])].append(charge)
        payment_ids: dict[str, str] = {}
        for key, entry in entries.items():
            pid = entry.payment_id or next(
                (str(c["payment_id"]) for c in by_key.get(key, ())), None
            )
            if pid:
                payment_ids[key] = pid
        states = _read_states(call, set(payment_ids.values()), timeout_s)
        unsettled = sum(1 for s in states.values() if not _settled(s, builtin))
        if unsettled == 0 or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    return _judge(
        entries,
        _Seen(by_key, by_payment, payment_ids, states, call, builtin),
        unsettled,
        gateway=bool(gateway_url),
    )


def _settled(state: str | None, builtin: bool) -> bool:
    """Whether the shop's state is final: the built-in API's own states (or no payment);
    any other shop names no pending state, so whatever it reads back is final."""
    return not builtin or state is None or state in _SETTLED


@dataclass(frozen=True)
class _Seen:
    """What the gateway's ledger and the read-back said."""

    by_key: dict[str, list[dict[str, Any]]]
    by_payment: dict[str, list[dict[str, Any]]]
    payment_ids: dict[str, str]
    states: dict[str, str | None]
    call: ReadBackCall
    builtin: bool

    def charged(self, state: str | None) -> bool:
        return state is not None and state in self.call.spec.charged_values


def _judge(
    entries: dict[str, LedgerEntry], seen: _Seen, unsettled: int, *, gateway: bool
) -> ReconcileReport:
    lost: list[Finding] = []
    doubles: list[Finding] = []
    mismatched: list[Finding] = []
    per_method: dict[str, dict[str, Any]] = {}
    client_counts: dict[str, Counter[str]] = defaultdict(Counter)
    shop_charged: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    unverified = 0
    for key, entry in entries.items():
        client_counts[entry.method][entry.outcome] += 1
        succeeded = [c for c in seen.by_key.get(key, ()) if c["status"] == "succeeded"]
        pid = seen.payment_ids.get(key)
        state = seen.states.get(pid) if pid else None
        said = f"the shop says {state}" if state is not None else "the shop has no such payment"
        charged = seen.charged(state)
        if charged:
            totals = shop_charged[entry.method]
            totals[0] += 1
            totals[1] += entry.amount_cents
        if gateway:
            if len(succeeded) > 1:
                doubles.append(
                    Finding(
                        "double_charge",
                        key,
                        entry.method,
                        f"{len(succeeded)} succeeded charges for this key",
                    )
                )
            elif pid and sum(c["status"] == "succeeded" for c in seen.by_payment.get(pid, ())) > 1:
                doubles.append(
                    Finding(
                        "double_charge",
                        key,
                        entry.method,
                        f"several succeeded charges for payment {pid}",
                    )
                )
        if entry.outcome == "succeeded":
            if pid is None and not gateway:
                unverified += 1
            elif not charged or (gateway and not succeeded):
                detail = f"client saw charged (HTTP {entry.status}); " + (
                    f"payment {pid}: {said}" if pid else "no payment id"
                )
                if gateway:
                    detail += f"; gateway succeeded charges {len(succeeded)}"
                lost.append(Finding("lost", key, entry.method, detail))
        elif (
            charged and entry.outcome in ("declined", "rejected") and _settled(state, seen.builtin)
        ):
            lost.append(
                Finding(
                    "lost",
                    key,
                    entry.method,
                    f"client saw {entry.outcome} (HTTP {entry.status}) but payment {pid}: {said}",
                )
            )
        elif (
            gateway
            and succeeded
            and (state is None or (_settled(state, seen.builtin) and not charged))
        ):
            lost.append(Finding("lost", key, entry.method, f"gateway charged but {said}"))
        elif entry.outcome == "declined" and succeeded:
            mismatched.append(
                Finding(
                    "mismatch", key, entry.method, "client saw declined but the gateway charged"
                )
            )
    gateway_succeeded: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key in entries:
        for charge in seen.by_key.get(key, ()):
            if charge["status"] == "succeeded":
                totals = gateway_succeeded[charge["method"]]
                totals[0] += 1
                totals[1] += int(charge["amount_cents"])
    for method in sorted(set(client_counts) | set(gateway_succeeded)):
        client_cents = sum(
            e.amount_cents
            for e in entries.values()
            if e.method == method and e.outcome == "succeeded"
        )
        count, cents = shop_charged.get(method, [0, 0])
        row: dict[str, Any] = {
            "client": dict(client_counts.get(method, Counter())),
            "client_succeeded_amount_cents": client_cents,
            "shop_charged": count,
            "shop_charged_amount_cents": cents,
        }
        if gateway:
            count, cents = gateway_succeeded.get(method, [0, 0])
            row["gateway_succeeded"] = count
            row["gateway_succeeded_amount_cents"] = cents
        per_method[method] = row
    return ReconcileReport(
        checkouts=len(entries),
        lost=tuple(lost),
        double_charges=tuple(doubles),
        unknown=sum(1 for e in entries.values() if e.outcome == "unknown"),
        unsettled=unsettled,
        mismatched=tuple(mismatched),
        per_method=per_method,
        double_charges_checked=gateway,
        unverified=unverified,
    )
