"""Ledger check: the client ledger and the shop agree; nothing lost, nothing charged twice.

The comparison itself is the traffic layer's
:func:`paychaos.traffic.reconcile.reconcile`: every payment of the client
``ledger-*.jsonl`` files is read back through the target's checkout adapter
(``read_back``; paychaos' own API: ``GET /api/payments/{id}``). A payment is
**lost** when the client saw it charged but the read-back says otherwise (or
the reverse once settled). It waits up to ``settle_s`` for the shop to settle
payments left *unknown*.

Double charges need the gateway simulator's ledger (capability
``gateway.ledger``, a target with ``gateway_admin``): there, a **double
charge** is more than one succeeded charge for one idempotency key or
payment, and the gateway's own ``/v1/ledger/summary`` ``duplicate_charges``
must not grow during the run (doubles on keys the client never recorded).
Without it the check still runs, and its detail says plainly that double
charges were not checked.

Example::

    LedgerCheck(settle_s=30).observe(ctx, Window(run_started))
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, ClassVar

from paychaos.contracts.errors import InvalidTarget, StackError
from paychaos.contracts.expectations import CheckContext, CheckMode, Observation, Window
from paychaos.contracts.target import Checkout


def _get_json(url: str, timeout_s: float = 5.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            raise StackError(f"GET {url}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise StackError(f"GET {url}: {exc}") from exc


def gateway_duplicates(gateway_url: str) -> int:
    """The gateway's count of succeeded charges that repeat a key or payment."""
    summary = _get_json(gateway_url.rstrip("/") + "/v1/ledger/summary")
    return int(summary.get("duplicate_charges", 0)) if isinstance(summary, dict) else 0


class LedgerCheck:
    """Holds when no payment is lost and nothing is charged twice (within the tolerances)."""

    needs: ClassVar[tuple[str, ...]] = ("checkout.readback",)
    """The capabilities this expectation type always reads."""
    optional: ClassVar[tuple[str, ...]] = ("gateway.ledger",)
    """Read where the target has them (double charges); reported as not checked otherwise."""

    mode: CheckMode = "final"

    def __init__(self, *, max_lost: int = 0, max_double_charges: int = 0, settle_s: float = 45):
        self.max_lost, self.max_double, self.settle_s = max_lost, max_double_charges, settle_s
        self.requires = [*self.needs]
        self.description = "ledgers reconcile: no lost payment, no double charge"

    def observe(self, ctx: CheckContext, window: Window) -> Observation:
        from paychaos.traffic.reconcile import reading_client, reconcile

        if ctx.client_ledger is None or not (ctx.checkout or ctx.api_url):
            return Observation(False, "no client ledger or checkout API to reconcile")
        paths = ctx.client_ledger.ledger_paths()
        if not paths:
            return Observation(False, "the client ledger is empty: no traffic to reconcile")
        try:
            client = reading_client(ctx.checkout or Checkout(url=ctx.api_url))
        except InvalidTarget as exc:
            return Observation(False, f"cannot read payments back: {exc}")
        if client.read_back is None:
            return Observation(
                False,
                "not checkable: the target's checkout adapter cannot read a payment back "
                "(no read_back), so lost payments cannot be told",
            )
        before = int(ctx.baseline.get("gateway_duplicate_charges", 0))
        gateway = ctx.gateway_url or None
        try:
            report = reconcile(paths, client, gateway, settle_timeout_s=self.settle_s)
            delta = gateway_duplicates(gateway) - before if gateway else 0
        except (StackError, InvalidTarget) as exc:
            return Observation(False, f"cannot read a ledger: {exc}")
        doubled = max(len(report.double_charges), delta)
        detail = report.summary() + (f"; gateway duplicate_charges +{delta}" if delta else "")
        examples = [
            f"{f.idempotency_key}: {f.detail}" for f in (*report.lost, *report.double_charges)
        ]
        if examples:
            detail += " (e.g. " + "; ".join(examples[:3]) + ")"
        ok = len(report.lost) <= self.max_lost and doubled <= self.max_double
        return Observation(ok, detail, ctx.clock() if ok else None)
