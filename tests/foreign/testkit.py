"""Start the foreign shop API (:mod:`tests.foreign.shop_api`) as a subprocess, always stop it.

Example::

    with run_shop_api(env={"SHOP_API_KEY": "k"}, args=("--api-key-env", "SHOP_API_KEY")) as shop:
        shop.set_faults(unavailable_every=5, after_charge=True)
        shop.lose_payments(1)  # the negative control of reconciliation: {key: ref} lost
        ...  # PUT {shop.url}/v2/orders/{key}/payment
        shop.payments_total()  # {("visa", "success"): 12.0, ...}
        shop.arrivals_s()  # when each order's first request arrived (Unix seconds, sorted)

It listens on a free loopback port; its database and pid file live in a
temporary directory that is removed afterwards (or in ``state_dir``, kept).
The process is stopped by its pid (SIGTERM, then SIGKILL after 10 s).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from paychaos.stack.service import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ShopApi:
    """A running foreign shop: its URL, its process, its files."""

    url: str
    pid: int
    db: Path
    pid_file: Path
    headers: Mapping[str, str]

    def _call(self, method: str, path: str, body: object = None) -> object:
        data = None if body is None else orjson.dumps(body)
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers=dict(self.headers)
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return orjson.loads(resp.read())

    def set_faults(self, *, unavailable_every: int = 0, after_charge: bool = False) -> None:
        """Every Nth new order answers 503 once (after recording it, with ``after_charge``)."""
        self._call(
            "POST",
            "/admin/faults",
            {"unavailable_every": unavailable_every, "after_charge": after_charge},
        )

    def lose_payments(self, count: int = 1) -> dict[str, str]:
        """The shop loses its ``count`` latest paid orders; ``{key: ref}`` of those lost."""
        answer = self._call("POST", "/admin/lose", {"count": count})
        assert isinstance(answer, dict)
        return {row["key"]: row["ref"] for row in answer["lost"]}

    def arrivals_s(self) -> list[float]:
        """When each order's first request reached the shop (Unix seconds, ascending)."""
        with contextlib.closing(sqlite3.connect(self.db)) as db:
            rows = db.execute("SELECT received_s FROM orders ORDER BY received_s").fetchall()
        return [float(row[0]) for row in rows]

    def first_arrival_s(self) -> float | None:
        """When the first order reached the shop (Unix seconds); None before any."""
        with contextlib.closing(sqlite3.connect(self.db)) as db:
            (first,) = db.execute("SELECT MIN(received_s) FROM orders").fetchone()
        return None if first is None else float(first)

    def payments_total(self) -> dict[tuple[str, str], float]:
        """``shop_payments_total`` from the shop's ``/metrics``, by ``(method, status)``."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
        out: dict[tuple[str, str], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "shop_payments_total":
                    out[(sample.labels["method"], sample.labels["status"])] = sample.value
        return out


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"the foreign shop exited with {proc.returncode}: {err.strip()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the foreign shop did not become healthy in 15 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    if proc.stderr is not None:
        proc.stderr.close()


@contextlib.contextmanager
def run_shop_api(
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    state_dir: Path | None = None,
) -> Iterator[ShopApi]:
    """Start ``python -m tests.foreign.shop_api`` on a free loopback port; always stop it.

    ``args`` are extra flags (``--limit-cents``, ``--api-key-env``); ``env`` is
    added to the process's environment; ``headers`` go with the admin calls.
    """
    own_dir = state_dir is None
    root = Path(tempfile.mkdtemp(prefix="paychaos-shop-")) if state_dir is None else state_dir
    db, pid_file = root / "shop.db", root / "shop.pid"
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.foreign.shop_api",
            "--port",
            str(port),
            "--db",
            str(db),
            "--pid-file",
            str(pid_file),
            *args,
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc)
        yield ShopApi(url, proc.pid, db, pid_file, dict(headers or {}))
    finally:
        _stop(proc)
        if own_dir:
            shutil.rmtree(root, ignore_errors=True)


__all__ = ["ShopApi", "run_shop_api"]
