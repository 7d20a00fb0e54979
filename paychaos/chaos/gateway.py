"""Payment-gateway faults, through the gateway simulator's admin API.

Each fault is one *behaviour* (``POST /admin/behaviours``) for one method or
all (``--method paypal`` / ``*``). The gateway holds the TTL (``ttl_s``),
drops the behaviour by itself at expiry, and exports
``chaos_fault_active{fault="gateway_timeouts",target="gateway/paypal"}``.

- ``gateway-timeout``: a share of charges hangs past the API's gateway
  timeout (API answers 504, payment left *unknown*);
- ``gateway-errors``: a share of charges fails with HTTP 500/502/503 (API 502);
- ``decline-spike``: the processor declines a share of charges (API 402);
- ``gateway-latency``: added latency ± jitter on charges.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paychaos.chaos.base import Applied, Fault, InjectContext
from paychaos.chaos.params import param
from paychaos.chaos.target import FaultTarget
from paychaos.contracts.domain import METHODS as DOMAIN_METHODS
from paychaos.contracts.errors import FaultInjectionFailed, InvalidFault, RollbackFailed

METHODS = ("*", *DOMAIN_METHODS)
MAX_GATEWAY_TTL_S = 3600.0


class GatewayAdmin:
    """A tiny client of the gateway's admin API (bearer token)."""

    def __init__(self, url: str, token: str, *, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def _request(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
                return int(resp.status), json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            with exc:
                raw = exc.read()
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = {"error": {"message": raw.decode(errors="replace")}}
            return int(exc.code), payload
        except (urllib.error.URLError, OSError) as exc:
            raise FaultInjectionFailed(f"gateway admin API at {self.url}: {exc}") from exc

    def add(self, behaviour: Mapping[str, Any]) -> dict[str, Any]:
        status, payload = self._request("POST", "/admin/behaviours", dict(behaviour))
        if status == 400:
            raise InvalidFault(f"the gateway refused the behaviour: {_message(payload)}")
        if status != 201:
            raise FaultInjectionFailed(f"gateway admin API answered {status}: {_message(payload)}")
        return dict(payload)

    def remove(self, behaviour_id: str) -> bool:
        """True if removed, False if it was already gone (expired)."""
        status, payload = self._request("DELETE", f"/admin/behaviours/{behaviour_id}")
        if status == 404:
            return False
        if status != 200:
            raise RollbackFailed(
                f"gateway could not remove {behaviour_id} ({status}): {_message(payload)}"
            )
        return True

    def list(self) -> list[dict[str, Any]]:
        status, payload = self._request("GET", "/admin/behaviours")
        if status != 200:
            raise FaultInjectionFailed(f"gateway admin API answered {status}: {_message(payload)}")
        return list(payload.get("data", []))

    def clear(self) -> int:
        status, payload = self._request("DELETE", "/admin/behaviours")
        if status != 200:
            raise RollbackFailed(f"gateway could not clear behaviours ({status})")
        return int(payload.get("deleted", 0))


def _message(payload: Any) -> str:
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            param = err.get("param")
            msg = str(err.get("message", err))
            return f"{param}: {msg}" if param else msg
        if err:
            return str(err)
    return str(payload)


def admin_for(target: FaultTarget) -> GatewayAdmin:
    url, token = target.gateway_admin()
    return GatewayAdmin(url, token)


class _GatewayFault(Fault):
    """A fault made of one gateway behaviour."""

    max_duration_s = MAX_GATEWAY_TTL_S
    gateway_fault = ""

    def target_label(self) -> str:
        return f"gateway/{self.params.method}"

    def requires(self) -> list[str]:
        return ["gateway.behaviours"]

    def check(self, target: FaultTarget) -> None:
        target.gateway_admin()

    def behaviour(self) -> dict[str, Any]:
        raise NotImplementedError

    def inject(self, ctx: InjectContext, applied: Applied) -> None:
        body = {"method": self.params.method, **self.behaviour(), "ttl_s": ctx.ttl_s}
        created = admin_for(ctx.target).add(body)
        applied["behaviour_id"] = created["id"]
        applied["gateway_expires_at"] = created.get("expires_at")

    def revert(self, target: FaultTarget, applied: Mapping[str, Any]) -> dict[str, Any]:
        behaviour_id = applied.get("behaviour_id")
        if not behaviour_id:
            return {"removed": False}
        removed = admin_for(target).remove(str(behaviour_id))
        return {"removed": removed, "already_gone": not removed}


_METHOD_HELP = "payment method, or * for all"


@dataclass(frozen=True)
class GatewayTimeoutParams:
    method: str = param("*", choices=METHODS, help=_METHOD_HELP)
    rate: float = param(1.0, min=0.0, max=1.0, help="share of charges that hang")


class GatewayTimeout(_GatewayFault):
    name = "gateway-timeout"
    family = "gateway"
    description = "Charges hang past the API's gateway timeout (API 504, payment unknown)."
    params_cls = GatewayTimeoutParams
    metric_fault = "gateway_timeouts"

    def behaviour(self) -> dict[str, Any]:
        return {"timeout_rate": self.params.rate}


@dataclass(frozen=True)
class GatewayErrorsParams:
    method: str = param("*", choices=METHODS, help=_METHOD_HELP)
    error_rate: float = param(0.5, min=0.0, max=1.0, help="share of charges that fail")
    status: int = param(
        503, min=500, max=503, help="HTTP status the gateway answers: 500, 502, 503"
    )


class GatewayErrors(_GatewayFault):
    name = "gateway-errors"
    family = "gateway"
    description = "The gateway answers a share of charges with 5xx (API 502)."
    params_cls = GatewayErrorsParams
    metric_fault = "gateway_errors"

    def validate(self) -> None:
        if self.params.status == 501:
            raise InvalidFault(
                f"{self.name}: parameter status (--status) must be 500, 502 or 503, got 501"
            )

    def behaviour(self) -> dict[str, Any]:
        return {"error_rate": self.params.error_rate, "error_status": self.params.status}


@dataclass(frozen=True)
class DeclineSpikeParams:
    method: str = param("*", choices=METHODS, help=_METHOD_HELP)
    decline_rate: float = param(0.5, min=0.0, max=1.0, help="share of charges declined")


class DeclineSpike(_GatewayFault):
    name = "decline-spike"
    family = "gateway"
    description = "The processor declines a share of charges (API 402)."
    params_cls = DeclineSpikeParams
    metric_fault = "gateway_declines"

    def behaviour(self) -> dict[str, Any]:
        return {"decline_rate": self.params.decline_rate}


@dataclass(frozen=True)
class GatewayLatencyParams:
    method: str = param("*", choices=METHODS, help=_METHOD_HELP)
    latency_ms: int = param(500, min=1, max=600_000, help="latency added to charges")
    jitter_ms: int = param(0, min=0, max=600_000, help="± random variation")


class GatewayLatency(_GatewayFault):
    name = "gateway-latency"
    family = "gateway"
    description = "Slow gateway: latency added to charges (through the admin API)."
    params_cls = GatewayLatencyParams
    metric_fault = "gateway_latency"

    def behaviour(self) -> dict[str, Any]:
        return {
            "added_latency_ms": float(self.params.latency_ms),
            "latency_jitter_ms": float(self.params.jitter_ms),
        }


FAULTS: tuple[type[Fault], ...] = (GatewayTimeout, GatewayErrors, DeclineSpike, GatewayLatency)
