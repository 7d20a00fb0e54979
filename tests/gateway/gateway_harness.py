"""Helpers that run the real gateway as a subprocess on a free loopback port.

Every process started here is stopped in a ``finally`` by its own pid.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from paychaos.stack.service import free_port

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "test-admin-token"
# Profiles without random declines, so every assertion on a 201 is deterministic.
NO_DECLINES_YAML = "".join(
    f"{m}:\n  decline_rate: 0\n" for m in ("visa", "amex", "paypal", "crypto")
)


def no_declines_profiles(directory: Path) -> Path:
    path = directory / "profiles-no-declines.yaml"
    path.write_text(NO_DECLINES_YAML, encoding="utf-8")
    return path


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


def http_call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout_s: float = 10.0,
) -> Reply:
    """One HTTP request to 127.0.0.1:port; JSON bodies are encoded/decoded."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        payload: bytes | None
        if body is None:
            payload = None
        elif isinstance(body, bytes):
            payload = body
        else:
            payload = orjson.dumps(body)
        conn.request(method, path, body=payload, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
        parsed: Any
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = raw.decode("utf-8", "replace")
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, parsed)
    finally:
        conn.close()


def charge_body(method: str = "visa", **overrides: Any) -> dict[str, Any]:
    sources = {
        "visa": {"card_token": "tok_visa_abc", "last4": "4242"},
        "amex": {"card_token": "tok_amex_abc", "last4": "0005"},
        "paypal": {"payer_email": "buyer@example.com"},
        "crypto": {"wallet": "0xabc123", "network": "ethereum"},
    }
    body: dict[str, Any] = {
        "amount_cents": 1999,
        "currency": "USD",
        "method": method,
        "source": sources[method],
        "payment_id": f"pay-{time.monotonic_ns()}",
        "description": "order ord_123",
    }
    body.update(overrides)
    return body


@dataclass
class GatewayProcess:
    proc: subprocess.Popen[bytes]
    port: int
    stderr_path: Path

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return http_call(self.port, method, path, body, **kwargs)

    def charge(self, key: str, body: dict[str, Any], timeout_s: float = 10.0) -> Reply:
        return http_call(
            self.port, "POST", "/v1/charges", body, {"Idempotency-Key": key}, timeout_s=timeout_s
        )

    def admin(
        self, method: str, path: str, body: Any = None, token: str | None = ADMIN_TOKEN
    ) -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return http_call(self.port, method, path, body, headers)

    def behaviour(self, **fields: Any) -> str:
        reply = self.admin("POST", "/admin/behaviours", {"ttl_s": 30, **fields})
        assert reply.status == 201, reply.body
        return str(reply.body["id"])

    def metrics(self) -> str:
        reply = self.call("GET", "/metrics")
        assert reply.status == 200
        return str(reply.body)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM by pid, then SIGKILL if it does not exit within 5 s."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@contextlib.contextmanager
def running_gateway(*args: str, stderr_path: Path) -> Iterator[GatewayProcess]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.pop("PAYCHAOS_GATEWAY_ADMIN_TOKEN", None)
    argv = [
        sys.executable,
        "-m",
        "paychaos.stack.gateway",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with stderr_path.open("ab") as err:
        proc = subprocess.Popen(
            [*argv, *args], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        gateway = GatewayProcess(proc, port, stderr_path)
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {proc.returncode}: {gateway.stderr()}")
            with contextlib.suppress(OSError):
                if http_call(port, "GET", "/healthz", timeout_s=1).status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway not healthy in 20 s: {gateway.stderr()}")
            time.sleep(0.05)
        yield gateway
    finally:
        stop_process(proc)
