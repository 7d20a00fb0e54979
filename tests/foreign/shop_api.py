"""A foreign checkout API for tests: another team's shop, shaped nothing like paychaos' own.

Run::

    python -m tests.foreign.shop_api --port 8600 --db /tmp/shop.db --pid-file /tmp/shop.pid

(loopback only; ``tests/foreign/testkit.py`` starts and stops it for tests).

``PUT /v2/orders/{key}/payment`` (the key in the path is the idempotency key)::

    {"total": {"cents": 1900, "ccy": "USD"}, "paymentMethod": "visa",
     "buyer": {"id": "c1", "email": "a@example.com", "name": "Ana"},
     "lines": [{"sku": "S-1", "name": "Mug", "quantity": 2, "unit_price": "9.50"}]}

====  ===============================================================
200   ``{"state": "PAID", "ref": "pay_..."}``, or ``{"state": "REFUSED",
      "ref": "pay_...", "reason": "over_limit"}`` when the total exceeds
      ``--limit-cents`` (the buyer's credit limit)
400   ``{"error": "..."}``: a body this shop cannot read (lines must add
      up to the total)
401   ``X-Api-Key`` missing or wrong (when ``--api-key-env`` is given)
409   the key was used before for another body
503   ``{"error": "unavailable"}`` when the admin flag asks for it
====  ===============================================================

The same key with the same body answers the first answer again and never
charges twice. ``GET /v2/payments/{ref}`` → ``{"ref", "state", "key",
"total"}``. ``POST /admin/faults {"unavailable_every": N, "after_charge":
bool}``: every Nth new order (counted over orders not yet failed) answers 503
once; with ``after_charge`` the order is recorded (and charged) first, so only
the answer is lost. ``POST /admin/lose {"count": N}``: the shop loses its N
latest paid orders (they are deleted: reading them back answers 404), the
negative control of ledger reconciliation; answers ``{"lost": [{"key",
"ref"}, ...]}``. ``GET /metrics``: ``shop_payments_total{method,status}``
(``success``, ``declined``, ``error``; each order counted once when it is
processed, each 503 once), the seed's counter. SQLite storage; each order's row
keeps when its first request arrived (``received_s``, Unix seconds), so a test can
count the arrivals of a load shape server-side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import os
import signal
import sqlite3
import sys
import time
import uuid
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

METHODS = ("visa", "paypal", "amex", "crypto")
STATUSES = ("success", "declined", "error")
LOOPBACK = ("127.0.0.1", "::1", "localhost")
MAX_BODY_BYTES = 64 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    key TEXT PRIMARY KEY,
    body_hash TEXT NOT NULL,
    ref TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    method TEXT NOT NULL,
    cents INTEGER NOT NULL,
    ccy TEXT NOT NULL,
    answer BLOB NOT NULL,
    received_s REAL NOT NULL
)
"""


class BadBody(ValueError):
    """The body is not an order this shop can read (answered 400 with the message)."""


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def parse_order(raw: bytes) -> tuple[str, int, str]:
    """``(method, cents, ccy)`` of a payment body; :class:`BadBody` naming the field."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadBody("the body is not JSON") from None
    if not isinstance(doc, dict):
        raise BadBody("the body is not a JSON object")
    extra = set(doc) - {"total", "paymentMethod", "buyer", "lines", "note"}
    if extra:
        raise BadBody(f"unknown fields: {', '.join(sorted(extra))}")
    total = doc.get("total")
    if not isinstance(total, dict):
        raise BadBody("total: an object {cents, ccy} is required")
    cents, ccy = total.get("cents"), total.get("ccy")
    if not isinstance(cents, int) or isinstance(cents, bool) or cents <= 0:
        raise BadBody("total.cents: a positive integer is required")
    if not isinstance(ccy, str) or len(ccy) != 3 or not ccy.isupper():
        raise BadBody("total.ccy: a three-letter currency code is required")
    method = doc.get("paymentMethod")
    if method not in METHODS:
        raise BadBody(f"paymentMethod: one of {', '.join(METHODS)}")
    buyer = doc.get("buyer")
    if not isinstance(buyer, dict) or "@" not in str(buyer.get("email", "")):
        raise BadBody("buyer: an object with an email is required")
    lines = doc.get("lines")
    if not isinstance(lines, list) or not lines:
        raise BadBody("lines: a non-empty list is required")
    sum_cents = 0
    for i, line in enumerate(lines):
        if not isinstance(line, dict) or not isinstance(line.get("sku"), str):
            raise BadBody(f"lines[{i}].sku: required")
        qty, price = line.get("quantity"), line.get("unit_price")
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
            raise BadBody(f"lines[{i}].quantity: a positive integer is required")
        try:
            unit = Decimal(str(price)) * 100 if isinstance(price, str) else Decimal("NaN")
        except InvalidOperation:
            unit = Decimal("NaN")
        if not unit.is_finite() or unit != unit.to_integral_value() or unit <= 0:
            raise BadBody(f'lines[{i}].unit_price: a price string such as "9.50" is required')
        sum_cents += int(unit) * qty
    if sum_cents != cents:
        raise BadBody(f"lines add up to {sum_cents} cents, total.cents is {cents}")
    return str(method), cents, ccy


class Shop:
    """The shop's state: its database, its metrics and its fault flags."""

    def __init__(self, db: Path, limit_cents: int, api_key: str | None) -> None:
        self.db = sqlite3.connect(db, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(_SCHEMA)
        self.limit_cents = limit_cents
        self.api_key = api_key
        self.registry = CollectorRegistry()
        self.payments = Counter(
            "shop_payments",
            "Payments by method and outcome (success, declined, error).",
            ["method", "status"],
            registry=self.registry,
        )
        for method in METHODS:
            for status in STATUSES:
                self.payments.labels(method, status)
        self.unavailable_every = 0
        self.after_charge = False
        self._new_orders = 0
        self._failed_keys: set[str] = set()

    def authorised(self, request: web.Request) -> bool:
        if self.api_key is None:
            return True
        given = request.headers.get("X-Api-Key", "")
        return hmac.compare_digest(given.encode(), self.api_key.encode())

    def _fail_now(self, key: str) -> bool:
        """Whether this attempt answers 503 (each key at most once, every Nth new order)."""
        if self.unavailable_every <= 0 or key in self._failed_keys:
            return False
        self._new_orders += 1
        if self._new_orders % self.unavailable_every:
            return False
        self._failed_keys.add(key)
        return True

    async def pay(self, request: web.Request) -> web.Response:
        if not self.authorised(request):
            return _json(401, {"error": "X-Api-Key missing or wrong"})
        key = request.match_info["key"]
        if not 8 <= len(key) <= 200:
            return _json(400, {"error": "the order key has 8 to 200 characters"})
        received_s = time.time()
        raw = await request.read()
        if len(raw) > MAX_BODY_BYTES:
            return _json(400, {"error": "body too large"})
        try:
            method, cents, ccy = parse_order(raw)
        except BadBody as exc:
            return _json(400, {"error": str(exc)})
        body_hash = hashlib.sha256(raw).hexdigest()
        # No await from here on: the check and the insert are one step of the event loop.
        row = self.db.execute(
            "SELECT body_hash, answer FROM orders WHERE key = ?", (key,)
        ).fetchone()
        if row is not None:
            if row[0] != body_hash:
                return _json(409, {"error": f"order {key} was paid with another body"})
            return web.Response(status=200, body=row[1], content_type="application/json")
        fail = self._fail_now(key)
        if fail and not self.after_charge:
            self.payments.labels(method, "error").inc()
            return _json(503, {"error": "unavailable"})
        ref = "pay_" + uuid.uuid4().hex
        state = "REFUSED" if cents > self.limit_cents else "PAID"
        answer: dict[str, Any] = {"state": state, "ref": ref}
        if state == "REFUSED":
            answer["reason"] = "over_limit"
        encoded = orjson.dumps(answer)
        self.db.execute(
            "INSERT INTO orders (key, body_hash, ref, state, method, cents, ccy, answer, received_s)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, body_hash, ref, state, method, cents, ccy, encoded, received_s),
        )
        self.payments.labels(method, "success" if state == "PAID" else "declined").inc()
        if fail:  # charged, but the answer is lost: the client must retry with the same key
            self.payments.labels(method, "error").inc()
            return _json(503, {"error": "unavailable"})
        return web.Response(status=200, body=encoded, content_type="application/json")

    async def payment(self, request: web.Request) -> web.Response:
        if not self.authorised(request):
            return _json(401, {"error": "X-Api-Key missing or wrong"})
        row = self.db.execute(
            "SELECT ref, state, key, cents, ccy FROM orders WHERE ref = ?",
            (request.match_info["ref"],),
        ).fetchone()
        if row is None:
            return _json(404, {"error": "no such payment"})
        ref, state, key, cents, ccy = row
        return _json(
            200, {"ref": ref, "state": state, "key": key, "total": {"cents": cents, "ccy": ccy}}
        )

    async def faults(self, request: web.Request) -> web.Response:
        try:
            doc = orjson.loads(await request.read())
            every = int(doc.get("unavailable_every", 0))
            after = bool(doc.get("after_charge", False))
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            return _json(400, {"error": 'send {"unavailable_every": N, "after_charge": bool}'})
        if every < 0:
            return _json(400, {"error": "unavailable_every must not be negative"})
        self.unavailable_every, self.after_charge = every, after
        self._new_orders = 0
        return _json(200, {"unavailable_every": every, "after_charge": after})

    async def lose(self, request: web.Request) -> web.Response:
        try:
            count = int(orjson.loads(await request.read()).get("count", 1))
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            return _json(400, {"error": 'send {"count": N}'})
        if not 0 <= count <= 1000:
            return _json(400, {"error": "count must be between 0 and 1000"})
        rows = self.db.execute(
            "SELECT key, ref FROM orders WHERE state = 'PAID' ORDER BY rowid DESC LIMIT ?",
            (count,),
        ).fetchall()
        self.db.executemany("DELETE FROM orders WHERE key = ?", [(key,) for key, _ in rows])
        return _json(200, {"lost": [{"key": key, "ref": ref} for key, ref in rows]})

    async def metrics(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(self, _request: web.Request) -> web.Response:
        return _json(200, {"status": "ok"})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES * 2)
        app.router.add_put("/v2/orders/{key}/payment", self.pay)
        app.router.add_get("/v2/payments/{ref}", self.payment)
        app.router.add_post("/admin/faults", self.faults)
        app.router.add_post("/admin/lose", self.lose)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/healthz", self.healthz)
        return app


async def serve(shop: Shop, host: str, port: int, pid_file: Path | None) -> None:
    runner = web.AppRunner(shop.app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        if pid_file is not None:  # written once listening: a waiter may then connect
            pid_file.write_text(f"{os.getpid()}\n")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.foreign.shop_api", description="A foreign checkout API for tests."
    )
    parser.add_argument("--host", default="127.0.0.1", choices=LOOPBACK)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True, help="SQLite file (created)")
    parser.add_argument("--pid-file", type=Path, help="written once listening, removed at exit")
    parser.add_argument("--limit-cents", type=int, default=50_000, help="refuse above this total")
    parser.add_argument("--api-key-env", help="require X-Api-Key equal to this variable's value")
    args = parser.parse_args(argv)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            print(
                f"shop_api: the environment variable {args.api_key_env} is not set", file=sys.stderr
            )
            return 2
    try:
        shop = Shop(args.db, args.limit_cents, api_key)
    except sqlite3.Error as exc:
        print(f"shop_api: cannot open the database {args.db}: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(shop, args.host, args.port, args.pid_file))
    except OSError as exc:
        print(
            f"shop_api: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr
        )
        return 1
    finally:
        shop.db.close()
        if args.pid_file is not None:  # ours only: never another process's pid file
            with contextlib.suppress(OSError):
                if args.pid_file.read_text().strip() == str(os.getpid()):
                    args.pid_file.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
