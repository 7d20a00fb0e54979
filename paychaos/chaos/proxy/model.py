"""Typed, frozen models of proxies and toxics, parsed and validated at the API edge.

Every function here is pure: it takes decoded JSON and either returns a frozen
model or raises :class:`ApiError` with a Toxiproxy-style message and HTTP status,
before anything touches a socket (validate, then run).

>>> spec = parse_toxic({"type": "latency", "attributes": {"latency": 200}})
>>> (spec.name, spec.stream, spec.toxicity, spec.attr("latency"))
('latency_downstream', 'downstream', 1.0, 200)
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from paychaos.stack.service import is_loopback

Stream = Literal["upstream", "downstream"]
ToxicityMode = Literal["per_connection", "per_chunk"]

STREAMS: tuple[Stream, ...] = ("upstream", "downstream")
TOXICITY_MODES: tuple[ToxicityMode, ...] = ("per_connection", "per_chunk")

#: Known toxic types and their integer attributes (all >= 0; units in the comment).
TOXIC_ATTRIBUTES: dict[str, dict[str, str]] = {
    "latency": {"latency": "ms", "jitter": "ms"},
    "timeout": {"timeout": "ms"},
    "reset_peer": {"timeout": "ms"},
    "bandwidth": {"rate": "KB/s"},
    "slow_close": {"delay": "ms"},
    "slicer": {"average_size": "bytes", "size_variation": "bytes", "delay": "us"},
    "limit_data": {"bytes": "bytes"},
    "noop": {},
}

#: Toxics whose effect is about one chunk, and so can be decided per chunk.
PER_CHUNK_TYPES = frozenset({"latency", "timeout", "reset_peer", "bandwidth", "slicer", "noop"})

#: Toxic fields fixed at creation; an update ignores them, as Toxiproxy does.
IMMUTABLE_TOXIC_FIELDS = ("name", "type", "stream")

#: Fields this proxy adds to Toxiproxy's toxic JSON (listed in every toxic as ``extensions``).
EXTENSION_FIELDS = ("toxicity_mode", "ttl_s", "expires_at", "ttl_remaining_s")


# Toxiproxy's error messages (``api.go``), word for word: clients and scripts match on them.
ERR_BAD_REQUEST_BODY = "bad request body"
ERR_MISSING_FIELD = "missing required field"
ERR_PROXY_NOT_FOUND = "proxy not found"
ERR_PROXY_ALREADY_EXISTS = "proxy already exists"
ERR_INVALID_STREAM = "stream was invalid, can be either upstream or downstream"
ERR_INVALID_TOXIC_TYPE = "invalid toxic type"
ERR_TOXIC_ALREADY_EXISTS = "toxic already exists"
ERR_TOXIC_NOT_FOUND = "toxic not found"


class ApiError(Exception):
    """An error the control API reports as ``{"error": message, "status": status}``.

    ``message`` is Toxiproxy's wording where Toxiproxy has one; ``detail``, when
    set, explains further and is sent as an extra ``"detail"`` field so that the
    ``"error"`` string stays exactly Toxiproxy's.
    """

    def __init__(self, status: int, message: str, detail: str | None = None) -> None:
        super().__init__(f"{message} ({detail})" if detail else message)
        self.status = status
        self.message = message
        self.detail = detail

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"error": self.message, "status": self.status}
        if self.detail:
            data["detail"] = self.detail
        return data


def bad_request(reason: str) -> ApiError:
    """400 ``bad request body: <reason>``: Toxiproxy's wording for a body it cannot use."""
    return ApiError(400, f"{ERR_BAD_REQUEST_BODY}: {reason}")


def missing_field(name: str) -> ApiError:
    """400 ``missing required field: <name>``, as Toxiproxy words it."""
    return ApiError(400, f"{ERR_MISSING_FIELD}: {name}")


@dataclass(frozen=True)
class Address:
    """A ``host:port`` pair; ``str()`` gives Toxiproxy's notation (``[::1]:80`` for IPv6)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(value: object, field_name: str, *, allow_non_loopback: bool) -> Address:
    """Parse ``host:port``; refuse non-loopback hosts unless allowed, naming ``field_name``."""
    if not isinstance(value, str) or not value:
        raise bad_request(f"{field_name}: expected a 'host:port' string, got {value!r}")
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise bad_request(f"{field_name}: expected 'host:port', got {value!r}")
    host = host.strip("[]")
    if not allow_non_loopback and not is_loopback(host):
        raise bad_request(
            f"{field_name}: {host or '(all interfaces)'} is not a loopback address; "
            "start the proxy with --allow-non-loopback to allow it"
        )
    if host == "localhost":
        host = "127.0.0.1"
    return Address(host or "0.0.0.0", int(port_text))


@dataclass(frozen=True)
class ProxySpec:
    """What a client asked for: a named listener forwarding to an upstream."""

    name: str
    listen: Address
    upstream: Address
    enabled: bool = True


def _require_object(body: object, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise bad_request(f"{what} must be a JSON object")
    return body


def parse_proxy(
    body: object, *, allow_non_loopback: bool, current: ProxySpec | None = None
) -> ProxySpec:
    """Validate a create (``current`` None) or update request for a proxy."""
    data = _require_object(body, "a proxy")
    if current is None:
        for required in ("name", "upstream"):
            if not data.get(required):
                raise missing_field(required)
    name = data.get("name", current.name if current else "")
    if not isinstance(name, str) or not name or "/" in name:
        raise bad_request(f"name: expected a non-empty string without '/', got {name!r}")
    if current is not None and name != current.name:
        raise bad_request("name: a proxy cannot be renamed; delete it and create a new one")
    enabled = data.get("enabled", current.enabled if current else True)
    if not isinstance(enabled, bool):
        raise bad_request(f"enabled: expected true or false, got {enabled!r}")
    listen = (
        parse_address(data["listen"], "listen", allow_non_loopback=allow_non_loopback)
        if data.get("listen")
        else (current.listen if current else Address("127.0.0.1", 0))
    )
    upstream = (
        parse_address(data["upstream"], "upstream", allow_non_loopback=allow_non_loopback)
        if "upstream" in data
        else current.upstream  # type: ignore[union-attr]  # required when current is None
    )
    return ProxySpec(name=name, listen=listen, upstream=upstream, enabled=enabled)


@dataclass(frozen=True)
class ToxicSpec:
    """One toxic as configured. ``expires_at`` is wall-clock (Unix seconds) or None."""

    name: str
    type: str
    stream: Stream = "downstream"
    toxicity: float = 1.0
    attributes: Mapping[str, int] = field(default_factory=dict)
    toxicity_mode: ToxicityMode = "per_connection"
    ttl_s: float | None = None
    expires_at: float | None = None

    def attr(self, key: str) -> int:
        return self.attributes.get(key, 0)

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        """Toxiproxy's toxic JSON plus this proxy's extension fields."""
        remaining = None
        if self.expires_at is not None:
            now = time.time() if now is None else now
            remaining = round(max(0.0, self.expires_at - now), 3)
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
            "toxicity_mode": self.toxicity_mode,
            "ttl_s": self.ttl_s,
            "expires_at": self.expires_at,
            "ttl_remaining_s": remaining,
            "extensions": list(EXTENSION_FIELDS),
        }


def _non_negative_int(value: object, where: str, unit: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_request(f"{where} must be a non-negative integer ({unit}), got {value!r}")
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise bad_request(f"{where} must be a non-negative integer ({unit}), got {value!r}")
    if value < 0:
        raise bad_request(f"{where} must be a non-negative integer ({unit}), got {value!r}")
    return int(value)


def _positive_number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad_request(f"{where} must be a number, got {value!r}")
    return float(value)


def _parse_stream(value: object) -> Stream:
    """``upstream`` or ``downstream``, in any case (Toxiproxy lower-cases it too)."""
    stream = value.lower() if isinstance(value, str) else value
    if stream not in STREAMS:
        known = " or ".join(STREAMS)
        raise ApiError(400, ERR_INVALID_STREAM, f"got {value!r}, expected {known}")
    return stream


def toxic_identity(body: object) -> tuple[str, str, Stream]:
    """The ``(name, type, stream)`` of a toxic to create, checked in Toxiproxy's order.

    Stream first, then type, so a body wrong in both gets Toxiproxy's answer;
    the caller checks the name is free (409) before the attributes are validated.
    """
    data = _require_object(body, "a toxic")
    raw_stream = data.get("stream")
    stream = "downstream" if raw_stream is None else _parse_stream(raw_stream)
    toxic_type = data.get("type")
    if toxic_type not in TOXIC_ATTRIBUTES:
        known = ", ".join(sorted(TOXIC_ATTRIBUTES))
        raise ApiError(400, ERR_INVALID_TOXIC_TYPE, f"got {toxic_type!r}; known types: {known}")
    name = data.get("name") or f"{toxic_type}_{stream}"
    if not isinstance(name, str) or "/" in name:
        raise bad_request(f"name: expected a string without '/', got {name!r}")
    return name, toxic_type, stream


def parse_toxic(
    body: object, *, current: ToxicSpec | None = None, now: float | None = None
) -> ToxicSpec:
    """Validate a toxic create (``current`` None) or update (merged into ``current``).

    An update ignores ``name``, ``type`` and ``stream`` (:data:`IMMUTABLE_TOXIC_FIELDS`),
    as Toxiproxy does: they key the toxic, so a client may send back the whole
    toxic JSON it read with only the attributes or toxicity changed.

    The extension fields (``toxicity_mode``, ``ttl_s``, ``expires_at``) are
    accepted at the top level or inside ``attributes`` (for Toxiproxy clients
    that can only send attributes).
    """
    data = dict(_require_object(body, "a toxic"))
    now = time.time() if now is None else now
    raw_attributes = data.get("attributes", {})
    if raw_attributes is None:
        raw_attributes = {}
    attributes_in = dict(_require_object(raw_attributes, "attributes"))
    for ext in ("toxicity_mode", "ttl_s", "expires_at"):
        if ext in attributes_in:
            data.setdefault(ext, attributes_in.pop(ext))

    if current is None:
        name, toxic_type, stream = toxic_identity(data)
    else:
        name, toxic_type, stream = current.name, current.type, current.stream
        if (data.get("ttl_s"), data.get("expires_at")) == (current.ttl_s, current.expires_at):
            # The toxic's own JSON sent back: its expiry is unchanged, not given twice.
            data.pop("ttl_s", None)
            data.pop("expires_at", None)

    toxicity = data.get("toxicity", current.toxicity if current else 1.0)
    toxicity = _positive_number(toxicity, "toxicity")
    if not 0.0 <= toxicity <= 1.0:
        raise bad_request(f"toxicity must be between 0 and 1, got {toxicity!r}")

    schema = TOXIC_ATTRIBUTES[toxic_type]
    attributes = dict(current.attributes) if current else dict.fromkeys(schema, 0)
    for key, value in attributes_in.items():
        if key not in schema:
            known = ", ".join(schema)
            raise bad_request(
                f"attributes.{key}: unknown attribute for a {toxic_type} toxic (known: {known})"
            )
        attributes[key] = _non_negative_int(value, f"attributes.{key}", schema[key])

    mode = data.get("toxicity_mode", current.toxicity_mode if current else "per_connection")
    if mode not in TOXICITY_MODES:
        raise bad_request(f"toxicity_mode must be one of {', '.join(TOXICITY_MODES)}, got {mode!r}")
    if mode == "per_chunk" and toxic_type not in PER_CHUNK_TYPES:
        raise bad_request(f"toxicity_mode: per_chunk is not supported for a {toxic_type} toxic")

    ttl_s, expires_at = (current.ttl_s, current.expires_at) if current else (None, None)
    if data.get("ttl_s") is not None and data.get("expires_at") is not None:
        raise bad_request("give either ttl_s or expires_at, not both")
    if data.get("ttl_s") is not None:
        ttl_s = _positive_number(data["ttl_s"], "ttl_s")
        if ttl_s <= 0:
            raise bad_request(f"ttl_s must be greater than 0, got {ttl_s!r}")
        expires_at = now + ttl_s
    elif data.get("expires_at") is not None:
        expires_at = _positive_number(data["expires_at"], "expires_at")
        if expires_at <= now:
            raise bad_request(f"expires_at is in the past ({expires_at!r} <= now {now:.3f})")
        ttl_s = round(expires_at - now, 3)

    return ToxicSpec(
        name=name,
        type=toxic_type,
        stream=stream,
        toxicity=toxicity,
        attributes=attributes,
        toxicity_mode=mode,
        ttl_s=ttl_s,
        expires_at=expires_at,
    )
