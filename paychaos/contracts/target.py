"""A target: the one description of a deployment that every command works against.

The embedded stack, the Docker stack and a team's own staging system are all
targets. A target says where the checkout API is and how to call it (the
:class:`CheckoutAdapter`), where the signals are read (:class:`Signals`), and
which actuators can inject faults (:class:`Actuators`). From that alone it
offers :meth:`Target.capabilities`; each fault and expectation type declares
the capabilities it needs, and the runner refuses what a target cannot do.

A target file (YAML, validated like a scenario: ``file:line: field: message``)::

    name: staging
    allow_hosts: []                       # loopback only unless listed here
    checkout:
      url: http://127.0.0.1:3000
      adapter:
        path: /v1/orders/{key}/pay
        body: {amount: "{amount}", currency: "{currency}", paymentMethod: "{method}"}
        outcomes:
          charged: [{status: 200, pointer: /state, equals: PAID}]
          declined: [{status: 200, pointer: /state, equals: REFUSED}]
    signals:
      prometheus: http://127.0.0.1:9090
      alertmanager: http://127.0.0.1:9093
      traces: {kind: tempo, url: http://127.0.0.1:3200}
      logs: {kind: loki, url: http://127.0.0.1:3100}
    actuators:
      toxiproxy: {url: http://127.0.0.1:8474, proxies: {database: shop-db}}
      gateway_admin: {url: http://127.0.0.1:8101, token: {env: GATEWAY_ADMIN_TOKEN}}

Secrets are only ever references (:class:`SecretRef`: an environment variable
or a file); their values are resolved when used and never printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from paychaos.contracts.domain import COMPONENTS, DEPENDENCIES, Dependency
from paychaos.contracts.errors import InvalidTarget

_NAME = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
_HEADER = r"^[A-Za-z0-9-]{1,64}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- secrets


class SecretRef(_Model):
    """Where a secret is kept: an environment variable or a file (never inline)."""

    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    file: Path | None = None

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret is {env: NAME} or {file: PATH}, exactly one of them")
        return self

    def describe(self) -> str:
        """Where the value comes from, never the value: ``$GATEWAY_TOKEN``."""
        return f"${self.env}" if self.env else f"file {self.file}"

    def resolve(self, environ: Mapping[str, str] | None = None) -> str:
        """The secret's value; :class:`InvalidTarget` naming where it was looked for."""
        if self.env is not None:
            value = (os.environ if environ is None else environ).get(self.env)
            if not value:
                raise InvalidTarget(f"the environment variable {self.env} is not set")
            return value
        assert self.file is not None
        try:
            value = self.file.read_text().strip()
        except OSError as exc:
            raise InvalidTarget(
                f"cannot read the secret file {self.file}: {exc.strerror}"
            ) from None
        if not value:
            raise InvalidTarget(f"the secret file {self.file} is empty")
        return value


# ---------------------------------------------------------------- checkout


class OutcomeRule(_Model):
    """One way to recognise an outcome: a status code, and optionally a body field's value.

    ``{status: 201}``; ``{status: 200, pointer: /state, equals: PAID}``; a rule
    with only ``pointer`` and ``equals`` matches any status.
    """

    status: int | None = Field(default=None, ge=100, le=599)
    pointer: str | None = Field(default=None, pattern=r"^(/[^/]*)*$")
    equals: str | int | float | bool | None = None

    @model_validator(mode="after")
    def _something(self) -> OutcomeRule:
        if self.status is None and self.pointer is None:
            raise ValueError("a rule needs a status, a pointer, or both")
        if (self.pointer is None) != (self.equals is None):
            raise ValueError("pointer and equals go together")
        return self


Outcome = Literal["charged", "declined", "retry", "invalid"]


def _rules(*statuses: int) -> tuple[OutcomeRule, ...]:
    return tuple(OutcomeRule(status=s) for s in statuses)


class Outcomes(_Model):
    """How an answer maps onto an outcome; the first outcome whose rule matches wins.

    Order: charged, declined, invalid, retry. An answer no rule matches (and a
    transport error) is *unknown*: retried with the same idempotency key, and
    reconciled later.
    """

    charged: tuple[OutcomeRule, ...] = _rules(201)
    declined: tuple[OutcomeRule, ...] = _rules(402)
    invalid: tuple[OutcomeRule, ...] = _rules(400, 409, 413, 422)
    retry: tuple[OutcomeRule, ...] = _rules(502, 503, 504)


class ReadBack(_Model):
    """How to read a payment back (for reconciling the client's ledger with the shop's)."""

    path: str = Field(pattern=r"^/", description="GET path; {id} is the payment id")
    status_pointer: str = Field(default="/status", pattern=r"^(/[^/]*)*$")
    charged_values: tuple[str, ...] = ("succeeded",)


Placeholder = Literal[
    "{method}", "{amount}", "{amount_cents}", "{currency}", "{customer}", "{items}", "{key}"
]


class CheckoutAdapter(_Model):
    """How to call a checkout API. The default is paychaos' own payment API.

    ``body`` is a JSON template: a string that is exactly one placeholder
    (``"{amount}"``) is replaced by the value with its type (``{items}`` by the
    list of items, ``{customer}`` by the customer object); placeholders inside
    longer strings are replaced as text. ``body: null`` sends the built-in
    API's own body. Placeholders: ``{method} {amount} {amount_cents}
    {currency} {customer} {items} {key}`` (``{key}`` is the idempotency key;
    it may also appear in ``path``).
    """

    method: Literal["POST", "PUT"] = "POST"
    path: str = Field(default="/api/checkout", pattern=r"^/")
    headers: Mapping[str, SecretRef | str] = Field(default_factory=dict)
    idempotency_header: str | None = Field(default="Idempotency-Key", pattern=_HEADER)
    body: dict[str, object] | None = None
    outcomes: Outcomes = Field(default_factory=Outcomes)
    payment_id: str | None = Field(default="/id", pattern=r"^(/[^/]*)*$")
    read_back: ReadBack | None = None

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: Mapping[str, SecretRef | str]) -> Mapping[str, SecretRef | str]:
        import re

        for name in value:
            if not re.match(_HEADER, name):
                raise ValueError(f"{name!r} is not a header name")
        return value

    @property
    def builtin(self) -> bool:
        """True for paychaos' own API (its body, its ledger, its span names)."""
        return self.body is None


class Checkout(_Model):
    """The checkout API: its base URL and how to call it."""

    url: str = Field(pattern=r"^https?://")
    adapter: CheckoutAdapter = Field(default_factory=CheckoutAdapter)


# ---------------------------------------------------------------- signals


class SignalStore(_Model):
    """Where one kind of signal is read: the paychaos collector, Tempo, or Loki."""

    kind: Literal["collector", "tempo", "loki"]
    url: str = Field(pattern=r"^https?://")


class Signals(_Model):
    """Where the expectations read. Each is optional; what is missing is not checked."""

    prometheus: str | None = Field(default=None, pattern=r"^https?://")
    alertmanager: str | None = Field(default=None, pattern=r"^https?://")
    traces: SignalStore | None = None
    logs: SignalStore | None = None
    rum: SignalStore | None = None
    notifications: SignalStore | None = None
    """Alertmanager webhook notifications as received (the paychaos collector's receiver)."""

    @model_validator(mode="after")
    def _kinds(self) -> Signals:
        allowed = {
            "traces": ("collector", "tempo"),
            "logs": ("collector", "loki"),
            "rum": ("collector",),  # Faro events from Loki: not read yet
            "notifications": ("collector",),
        }
        for name, kinds in allowed.items():
            store = getattr(self, name)
            if store is not None and store.kind not in kinds:
                raise ValueError(f"{name} are read from {' or '.join(kinds)}, not {store.kind}")
        return self


# ---------------------------------------------------------------- actuators


class Toxiproxy(_Model):
    """A Toxiproxy API and which of its proxies stands in front of which dependency."""

    url: str = Field(pattern=r"^https?://")
    proxies: Mapping[Dependency, str] = Field(default_factory=dict)


class AdminApi(_Model):
    """An admin API with a bearer token (the gateway simulator's, the API's leak hook)."""

    url: str = Field(pattern=r"^https?://")
    token: SecretRef | None = None


class Docker(_Model):
    """A Docker Engine and which container is which component."""

    host: str = Field(default="", description="DOCKER_HOST; empty: the environment's")
    containers: Mapping[str, str] = Field(default_factory=dict)


class Processes(_Model):
    """Local processes: read from a paychaos state file, or from pid files."""

    state_file: Path | None = None
    pid_files: Mapping[str, Path] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one(self) -> Processes:
        if (self.state_file is None) == (not self.pid_files):
            raise ValueError("processes are found by state_file or by pid_files, one of them")
        return self


class Actuators(_Model):
    """What can inject faults into the target. Each is optional."""

    toxiproxy: Toxiproxy | None = None
    gateway_admin: AdminApi | None = None
    api_admin: AdminApi | None = None
    docker: Docker | None = None
    processes: Processes | None = None
    cgroup: Path | None = Field(default=None, description="the instance's memory cgroup")
    memory_hog: bool = Field(
        default=False, description="the target runs on this host: a memory hog can be started"
    )


# ---------------------------------------------------------------- the target


class Timing(_Model):
    """The target's Prometheus and Alertmanager timing (detection floors depend on it)."""

    scrape_interval_s: float = Field(default=15.0, gt=0, le=600)
    evaluation_interval_s: float = Field(default=15.0, gt=0, le=600)
    group_wait_s: float = Field(default=30.0, ge=0, le=3600)


class Target(_Model):
    """One deployment: checkout, signals, actuators, timing, and the hosts allowed."""

    name: str = Field(pattern=_NAME)
    kind: Literal["embedded", "docker", "external"] = "external"
    description: str = ""
    checkout: Checkout
    signals: Signals = Field(default_factory=Signals)
    actuators: Actuators = Field(default_factory=Actuators)
    timing: Timing = Field(default_factory=Timing)
    allow_hosts: tuple[str, ...] = ()
    """Hosts other than loopback that load and faults may be sent to (an explicit allow-list)."""
    tracing: bool = True
    state_dir: Path | None = None
    """Where chaos journals go; a built-in stack's own state directory."""

    def capabilities(self) -> dict[str, str]:
        """Every capability this target offers, with where it comes from."""
        return dict(offered(self))

    def urls(self) -> dict[str, str]:
        """Every configured URL by role (for ``status`` and the loopback guard)."""
        out: dict[str, str] = {"checkout": self.checkout.url}
        sig, act = self.signals, self.actuators
        for name in ("prometheus", "alertmanager"):
            if getattr(sig, name):
                out[name] = getattr(sig, name)
        for name in ("traces", "logs", "rum", "notifications"):
            store = getattr(sig, name)
            if store is not None:
                out[name] = store.url
        if act.toxiproxy:
            out["toxiproxy"] = act.toxiproxy.url
        if act.gateway_admin:
            out["gateway_admin"] = act.gateway_admin.url
        if act.api_admin:
            out["api_admin"] = act.api_admin.url
        return out


#: Capability names, with what each one means (``paychaos target check`` prints them).
CAPABILITIES: Mapping[str, str] = {
    "checkout": "send checkouts through the adapter",
    "checkout.readback": "read a payment back (ledger reconciliation)",
    "metrics": "PromQL queries (Prometheus)",
    "alerts": "alert states (Prometheus' ALERTS)",
    "notifications": "alert notifications as delivered (webhook receiver)",
    "traces": "spans by trace and attribute (collector or Tempo)",
    "logs": "log records (collector or Loki)",
    "rum": "browser events (collector or Loki)",
    "gateway.behaviours": "gateway faults (the gateway simulator's admin API)",
    "gateway.ledger": "the gateway's charge ledger (duplicate charges)",
    "api.leak": "the payment API's memory-leak hook",
    "instance.cgroup": "the instance's memory cgroup",
    "memory.hog": "start a memory hog on the target's host",
    **{f"proxy.{d}": f"network faults in front of the {d} (Toxiproxy)" for d in DEPENDENCIES},
    **{f"process.{c}": f"signal the {c} process (kill, pause, restart)" for c in COMPONENTS},
    **{f"container.{c}": f"act on the {c} container (Docker)" for c in COMPONENTS},
}


def offered(target: Target) -> list[tuple[str, str]]:
    """``(capability, source)`` for each capability the target's configuration offers."""
    out: list[tuple[str, str]] = [("checkout", target.checkout.url)]
    adapter = target.checkout.adapter
    if adapter.builtin or adapter.read_back is not None:
        out.append(("checkout.readback", "adapter.read_back" if adapter.read_back else "built-in"))
    sig, act = target.signals, target.actuators
    if sig.prometheus:
        out += [("metrics", sig.prometheus), ("alerts", sig.prometheus)]
    for name in ("traces", "logs", "rum", "notifications"):
        store = getattr(sig, name)
        if store is not None:
            out.append((name, f"{store.kind} {store.url}"))
    if act.toxiproxy:
        for dep, proxy in sorted(act.toxiproxy.proxies.items()):
            out.append((f"proxy.{dep}", f"toxiproxy proxy {proxy}"))
    if act.gateway_admin:
        out += [
            ("gateway.behaviours", act.gateway_admin.url),
            ("gateway.ledger", act.gateway_admin.url),
        ]
    if act.api_admin:
        out.append(("api.leak", act.api_admin.url))
    if act.processes:
        names = sorted(act.processes.pid_files) if act.processes.pid_files else list(COMPONENTS)
        source = str(act.processes.state_file or "pid files")
        out += [(f"process.{n}", source) for n in names if n in COMPONENTS]
    if act.docker:
        out += [
            (f"container.{c}", f"container {name}")
            for c, name in sorted(act.docker.containers.items())
            if c in COMPONENTS
        ]
    if act.cgroup:
        out.append(("instance.cgroup", str(act.cgroup)))
    if act.memory_hog or act.cgroup:
        out.append(("memory.hog", "this host"))
    return out


Requirement = Annotated[str, "a capability name, or several joined by '|' (any one will do)"]


def missing(offers: Mapping[str, str], needs: list[Requirement]) -> list[Requirement]:
    """The requirements among ``needs`` that ``offers`` does not meet."""
    return [need for need in needs if not any(alt in offers for alt in need.split("|"))]


__all__ = [
    "CAPABILITIES",
    "Actuators",
    "AdminApi",
    "Checkout",
    "CheckoutAdapter",
    "Docker",
    "Outcome",
    "OutcomeRule",
    "Outcomes",
    "Placeholder",
    "Processes",
    "ReadBack",
    "Requirement",
    "SecretRef",
    "SignalStore",
    "Signals",
    "Target",
    "Timing",
    "Toxiproxy",
    "missing",
    "offered",
]
