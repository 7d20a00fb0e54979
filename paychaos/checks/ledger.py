"""Ledger check: client ledger, API database and gateway ledger agree; nothing lost or doubled.

The comparison itself is the traffic layer's
:func:`paychaos.traffic.reconcile.reconcile` (client ``ledger-*.jsonl`` files,
``GET /api/payments/{id}``, the gateway's ``GET /v1/charges``): a payment is
**lost** when the client saw 201 but the gateway has no succeeded charge or the
API's payment is not ``succeeded``, or when the gateway charged but the API
says declined/failed/nothing; a **double charge** is more than one succeeded
charge for one idempotency key or payment. It waits up to ``settle_s`` for the
API's reconciler to settle payments left *unknown*.

On top, the gateway's own ``/v1/ledger/summary`` ``duplicate_charges`` must not
grow during the run (doubles on keys the client never recorded).

Example::

    LedgerCheck(settle_s=30).observe(ctx, Window(run_started))
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, ClassVar

from paychaos.contracts.errors import StackError
from paychaos.contracts.expectations import CheckContext, CheckMode, Observation, Window


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

    needs: ClassVar[tuple[str, ...]] = ("checkout.readback", "gateway.ledger")
    """The capabilities this expectation type always reads."""

    mode: CheckMode = "final"

    def __init__(self, *, max_lost: int = 0, max_double_charges: int = 0, settle_s: float = 45):
        self.max_lost, self.max_double, self.settle_s = max_lost, max_double_charges, settle_s
        self.requires = [*self.needs]
        self.description = "ledgers reconcile: no lost payment, no double charge"

    def observe(self, ctx: CheckContext, window: Window) -> Observation:
        from paychaos.traffic.reconcile import reconcile

        if ctx.client_ledger is None or not ctx.api_url or not ctx.gateway_url:
            return Observation(False, "no client ledger or ledger URLs to reconcile")
        paths = ctx.client_ledger.ledger_paths()
        if not paths:
            return Observation(False, "the client ledger is empty: no traffic to reconcile")
        before = int(ctx.baseline.get("gateway_duplicate_charges", 0))
        try:
            report = reconcile(paths, ctx.api_url, ctx.gateway_url, settle_timeout_s=self.settle_s)
            delta = gateway_duplicates(ctx.gateway_url) - before
        except StackError as exc:
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
