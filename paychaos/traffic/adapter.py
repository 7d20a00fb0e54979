"""The checkout adapter at run time: a cart in, an HTTP request out; an answer in, an outcome out.

A target's :class:`~paychaos.contracts.target.CheckoutAdapter` says how to call
a checkout API. :class:`CheckoutClient` compiles it once (template, secret
headers, outcome rules, read-back) so that the hot path of load generation
only splices bytes::

    client = CheckoutClient(target.checkout, os.environ)   # InvalidTarget if it cannot work
    req = client.request(cart)                               # PreparedRequest(method, url, ...)
    async with session.request(req.method, req.url, headers=req.headers, data=req.body) as r:
        answer = client.interpret(r.status, await r.read())  # Answer("charged", "pay_123")

Body templates (``adapter.body``): a string that is exactly one placeholder
(``"{amount_cents}"``) becomes the value with its JSON type (``{items}`` the
list, ``{customer}`` the object, ``{amount_cents}`` an int, ``{amount}`` the
string ``"19.00"``); placeholders inside longer strings (dict keys included)
are replaced as text (an object or a list by its JSON text). ``{key}`` (the
idempotency key) may also appear in ``adapter.path``, URL-quoted. An unknown
placeholder is an :class:`InvalidTarget` at construction, before any load.

Outcomes follow ``adapter.outcomes`` in the order charged, declined, invalid,
retry; a rule with a ``pointer`` reads the JSON body (RFC 6901). A pointer
rule never matches a body that is not JSON; ``equals`` compares by JSON type
(``true`` is not ``1``, ``"200"`` is not ``200``). Status 0 (a transport
error) and an answer no rule matches are ``"unknown"``: retry with the same
key, reconcile later.

Secret header values are resolved once, here, and never appear in a ``repr``
or a message (:class:`PreparedRequest` and its headers print ``<secret>``).

Cost (``bench/bench_adapter.py``): building a request is a few microseconds.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal, NamedTuple, get_args

import orjson

from paychaos.contracts.errors import InvalidTarget
from paychaos.contracts.target import (
    Checkout,
    CheckoutAdapter,
    Outcome,
    OutcomeRule,
    Placeholder,
    ReadBack,
    SecretRef,
)
from paychaos.traffic.catalog import money

Verdict = Outcome | Literal["unknown"]
"""What :meth:`CheckoutClient.classify` answers: an outcome, or ``"unknown"``."""

#: The placeholder names a template may use (from the contract's :data:`Placeholder`).
PLACEHOLDERS: tuple[str, ...] = tuple(p.strip("{}") for p in get_args(Placeholder))
#: Built-in API: where a payment is read back.
BUILTIN_READ_BACK = ReadBack(path="/api/payments/{id}")
#: The client ledger's outcome (:mod:`paychaos.traffic.ledger`) for each verdict.
LEDGER_OUTCOME: Mapping[str, str] = {
    "charged": "succeeded",
    "declined": "declined",
    "invalid": "rejected",
    "retry": "unknown",
    "unknown": "unknown",
}
#: Verdicts after which a careful client stops (the others retry with the same key).
FINAL: frozenset[str] = frozenset({"charged", "declined", "invalid"})

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_URL_SAFE = re.compile(r"^[A-Za-z0-9_.~:-]+$")
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")
_ORDER: tuple[Outcome, ...] = ("charged", "declined", "invalid", "retry")
_MISSING: Final = object()


# ---------------------------------------------------------------- the cart


@dataclass(slots=True)
class Cart:
    """One checkout to send, whatever the API: the idempotency key and what is bought.

    ``customer`` is ``{"id", "email", "name"}``; each item is ``{"sku", "name",
    "quantity", "unit_price"}`` with ``unit_price`` a string (``"9.50"``);
    ``payment`` is the built-in body's method-specific details (tokens only).
    ``amount_cents`` is the items' total. ``builtin_parts``, when given, is
    :meth:`builtin_body` serialised around its ``order_id`` value (what comes
    before it, what comes after): the shopper model pre-serialises its
    purchases so that the built-in body is a splice on the hot path. A cart is
    read-only once built (not frozen: building one is on the hot path).
    """

    key: str
    method: str
    amount_cents: int
    currency: str
    customer: dict[str, Any]
    items: list[dict[str, Any]]
    payment: dict[str, Any]
    order_id: str | None = None
    builtin_parts: tuple[bytes, bytes] | None = None

    @property
    def amount(self) -> str:
        """``1900`` → ``"19.00"``."""
        return money(self.amount_cents)

    @classmethod
    def from_body(cls, key: str, body: Mapping[str, Any]) -> Cart:
        """A cart from a body of paychaos' own ``POST /api/checkout`` (as
        :meth:`builtin_body` writes it)."""
        return cls(
            key=key,
            method=str(body["method"]),
            amount_cents=cents(str(body["amount"])),
            currency=str(body["currency"]),
            customer=dict(body["customer"]),
            items=[dict(item) for item in body["items"]],
            payment=dict(body["payment"]),
            order_id=body.get("order_id"),
        )

    def builtin_body(self) -> dict[str, Any]:
        """The body of paychaos' own ``POST /api/checkout``."""
        body: dict[str, Any] = {"order_id": self.order_id} if self.order_id is not None else {}
        body.update(
            customer=self.customer,
            items=self.items,
            amount=money(self.amount_cents),
            currency=self.currency,
            method=self.method,
            payment=self.payment,
        )
        return body


_SAMPLE = Cart(
    key="chk-sample-0001",
    method="visa",
    amount_cents=1900,
    currency="USD",
    customer={"id": "cus_1", "email": "ana@example.com", "name": "Ana"},
    items=[{"sku": "SKU-1", "name": "Mug", "quantity": 2, "unit_price": "9.50"}],
    payment={"card_token": "tok_visa_0123456789ab", "last4": "4242"},
)
"""A cart a template is tried on once, at construction."""


def cents(amount: str) -> int:
    """``"19.00"`` → ``1900``; ``ValueError`` for anything but a plain amount with ≤ 2 decimals."""
    try:
        value = Decimal(amount) * 100
    except InvalidOperation:
        raise ValueError(f"{amount!r} is not an amount") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise ValueError(f"{amount!r} is not an amount in cents")
    return int(value)


# ---------------------------------------------------------------- requests


class _Headers(dict[str, str]):
    """Request headers whose secret values never print (``repr``, ``str``, f-strings)."""

    secret: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        shown = (f"{k!r}: {'<secret>' if k in self.secret else repr(v)}" for k, v in self.items())
        return "{" + ", ".join(shown) + "}"

    __str__ = __repr__


class PreparedRequest(NamedTuple):
    """One HTTP request, ready to send; its ``repr`` hides secret header values."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    def __repr__(self) -> str:
        return (
            f"PreparedRequest({self.method} {self.url}, headers={self.headers!r}, "
            f"{len(self.body)} bytes)"
        )


class Answer(NamedTuple):
    """What one answer meant: the verdict and the payment id, if the body names one."""

    outcome: Verdict
    payment_id: str | None


# ---------------------------------------------------------------- JSON pointers


def compile_pointer(pointer: str) -> tuple[str, ...]:
    """RFC 6901: ``"/a~1b/0"`` → ``("a/b", "0")``; ``""`` (the whole document) → ``()``."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise ValueError(f"a JSON pointer starts with '/', got {pointer!r}")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))


def _resolve(doc: Any, tokens: Sequence[str]) -> Any:
    """The value at ``tokens`` in ``doc``, or :data:`_MISSING` (never raises)."""
    for token in tokens:
        if isinstance(doc, dict):
            if token not in doc:
                return _MISSING
            doc = doc[token]
        elif isinstance(doc, list):
            if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
                return _MISSING  # "-" and leading zeros name no element
            index = int(token)
            if index >= len(doc):
                return _MISSING
            doc = doc[index]
        else:
            return _MISSING
    return doc


def _same(found: Any, expected: Any) -> bool:
    """JSON equality: a boolean only equals a boolean, a number a number, a string a string."""
    if isinstance(expected, bool) or isinstance(found, bool):
        return type(found) is type(expected) and found == expected
    if isinstance(expected, int | float):
        return isinstance(found, int | float) and found == expected
    return isinstance(found, str) and found == expected


def _json_text(value: Any) -> str | None:
    """A scalar as text (a string as is, others as JSON); None for objects, lists, null."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return orjson.dumps(value).decode()
    return None


_NOT_JSON: Final = object()


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _NOT_JSON


# ---------------------------------------------------------------- templates

#: Each placeholder's value as a Python expression of the cart ``c`` (with its JSON type) ...
_VALUE: Mapping[str, str] = {
    "method": "c.method",
    "amount": "money(c.amount_cents)",
    "amount_cents": "c.amount_cents",
    "currency": "c.currency",
    "customer": "c.customer",
    "items": "c.items",
    "key": "c.key",
}
#: ... and as text, inside a longer string (an object or a list as its JSON text).
_TEXT: Mapping[str, str] = {
    **_VALUE,
    "amount_cents": "str(c.amount_cents)",
    "customer": "text(c.customer)",
    "items": "text(c.items)",
}
assert set(_VALUE) == set(PLACEHOLDERS), "a placeholder of the contract has no value"
MAX_TEMPLATE_DEPTH = 32


def _text(value: object) -> str:
    return orjson.dumps(value).decode()


def _unknown(where: str, name: str, allowed: Sequence[str]) -> InvalidTarget:
    names = " ".join("{" + n + "}" for n in allowed)
    return InvalidTarget(f"{where}: unknown placeholder {{{name}}}; placeholders: {names}")


class _TemplateCompiler:
    """Turns a body template into one Python expression of the cart ``c``.

    Every literal of the template (text, numbers, constant subtrees) is a
    reference ``K[i]`` into a constants list: no template text ever becomes
    source code.
    """

    def __init__(self) -> None:
        self.consts: list[object] = []

    def _const(self, value: object) -> str:
        self.consts.append(value)
        return f"K[{len(self.consts) - 1}]"

    def _string(self, text: str, where: str) -> str:
        """A string with placeholders as text: a concatenation expression."""
        parts: list[str] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(text):
            name = match.group(1)
            if name not in _TEXT:
                raise _unknown(where, name, PLACEHOLDERS)
            if match.start() > pos:
                parts.append(self._const(text[pos : match.start()]))
            parts.append(_TEXT[name])
            pos = match.end()
        if not parts:
            return self._const(text)
        if pos < len(text):
            parts.append(self._const(text[pos:]))
        return "(" + " + ".join(parts) + ")"

    def expr(self, node: object, where: str, depth: int = 0) -> str:
        if depth > MAX_TEMPLATE_DEPTH:
            raise InvalidTarget(f"{where}: nested deeper than {MAX_TEMPLATE_DEPTH} levels")
        if isinstance(node, str):
            whole = _PLACEHOLDER.fullmatch(node)
            if whole is None:
                return self._string(node, where)
            if whole.group(1) not in _VALUE:
                raise _unknown(where, whole.group(1), PLACEHOLDERS)
            return _VALUE[whole.group(1)]
        if isinstance(node, Mapping):
            items = []
            for key, value in node.items():
                if not isinstance(key, str):
                    raise InvalidTarget(f"{where}: object keys are strings, got {key!r}")
                inner = f"{where}.{key}"
                items.append(f"{self._string(key, inner)}: {self.expr(value, inner, depth + 1)}")
            return "{" + ", ".join(items) + "}"
        if isinstance(node, list | tuple):
            values = [self.expr(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(node)]
            return "[" + ", ".join(values) + "]"
        if node is None or isinstance(node, bool | int | float):
            return self._const(node)
        raise InvalidTarget(f"{where}: {type(node).__name__} is not a JSON value")


def compile_template(template: Mapping[str, object], where: str) -> Callable[[Cart], bytes]:
    """A body template → a function ``cart -> JSON bytes`` (compiled once, one dump per call).

    Raises :class:`InvalidTarget` naming the place of an unknown placeholder
    or of a value that is not JSON.
    """
    compiler = _TemplateCompiler()
    source = "lambda c: dumps(" + compiler.expr(template, where) + ")"
    namespace: dict[str, Any] = {
        "K": tuple(compiler.consts),
        "dumps": orjson.dumps,
        "money": money,
        "text": _text,
        "str": str,
        "__builtins__": {},
    }
    render: Callable[[Cart], bytes] = eval(compile(source, f"<{where}>", "eval"), namespace)
    try:  # a trial render: a value orjson cannot write fails here, not under load
        render(_SAMPLE)
    except orjson.JSONEncodeError as exc:
        raise InvalidTarget(f"{where}: not JSON: {exc}") from None
    return render


def _compile_path(path: str, allowed: str, where: str) -> tuple[str, str] | tuple[str]:
    """``/v2/orders/{key}/pay`` → ``("/v2/orders/", "/pay")``; no placeholder → ``(path,)``."""
    names = _PLACEHOLDER.findall(path)
    for name in names:
        if name != allowed:
            raise _unknown(where, name, (allowed,))
    if not names:
        return (path,)
    if len(names) > 1:
        raise InvalidTarget(f"{where}: {{{allowed}}} may appear once, found {len(names)}")
    head, _, tail = path.partition("{" + allowed + "}")
    return head, tail


def _quote(value: str) -> str:
    return value if _URL_SAFE.match(value) else urllib.parse.quote(value, safe="")


def _join(parts: tuple[str, str] | tuple[str], value: str) -> str:
    return parts[0] + _quote(value) + parts[1] if len(parts) == 2 else parts[0]


# ---------------------------------------------------------------- outcome rules

_Rule = tuple[int | None, tuple[str, ...] | None, object]


def _compile_rules(adapter: CheckoutAdapter) -> tuple[tuple[Outcome, tuple[_Rule, ...]], ...]:
    out = []
    for outcome in _ORDER:
        rules: tuple[OutcomeRule, ...] = getattr(adapter.outcomes, outcome)
        out.append(
            (
                outcome,
                tuple(
                    (
                        r.status,
                        compile_pointer(r.pointer) if r.pointer is not None else None,
                        r.equals,
                    )
                    for r in rules
                ),
            )
        )
    return tuple(out)


def _status_table(rules: tuple[tuple[Outcome, tuple[_Rule, ...]], ...]) -> dict[int, Outcome]:
    """Status → outcome where the first rule that can match that status is a plain status rule.

    Built by walking the rules in order: a pointer rule with a status blocks that
    status; a pointer rule for any status ends the walk (everything after it may
    be preceded by it)."""
    table: dict[int, Outcome] = {}
    blocked: set[int] = {0}  # a transport error is unknown
    for outcome, compiled in rules:
        for code, tokens, _expected in compiled:
            if tokens is not None:
                if code is None:
                    return table
                blocked.add(code)
            elif code is not None and code not in blocked and code not in table:
                table[code] = outcome
    return table


# ---------------------------------------------------------------- read-back


class ReadBackCall:
    """How to read one payment back: the ``GET`` to send and what its answer says."""

    def __init__(self, base_url: str, spec: ReadBack, headers: _Headers, where: str) -> None:
        self.spec = spec
        self._path = _compile_path(spec.path, "id", f"{where}.path")
        self._base = base_url
        self._headers = headers
        self._tokens = compile_pointer(spec.status_pointer)
        self._charged = frozenset(spec.charged_values)

    def url(self, payment_id: str) -> str:
        return self._base + _join(self._path, payment_id)

    def request(self, payment_id: str) -> PreparedRequest:
        """The ``GET`` reading ``payment_id`` (with the adapter's own headers)."""
        return PreparedRequest("GET", self.url(payment_id), type(self._headers)(self._headers), b"")

    def state(self, status: int, body: bytes) -> str | None:
        """The payment's state in a read-back answer (a 2xx JSON body), as text; else None.

        A non-string state is its JSON text (``true``, ``3``)."""
        if not 200 <= status < 300:
            return None
        doc = _parse(body)
        if doc is _NOT_JSON:
            return None
        return _json_text(_resolve(doc, self._tokens))

    def charged(self, status: int, body: bytes) -> bool:
        """True when the answer says the payment was charged (``charged_values``)."""
        return self.state(status, body) in self._charged

    def __repr__(self) -> str:
        return f"ReadBackCall(GET {self._base}{self.spec.path}, {self.spec.status_pointer})"


# ---------------------------------------------------------------- the client


class CheckoutClient:
    """A :class:`Checkout` compiled for the hot path (see the module docstring).

    ``environ`` is where ``{env: NAME}`` secrets are looked up (``os.environ``
    by default); every secret is resolved here, once. Raises
    :class:`InvalidTarget` naming the field (never a secret's value).
    """

    def __init__(self, checkout: Checkout, environ: Mapping[str, str] | None = None) -> None:
        adapter = checkout.adapter
        self.checkout = checkout
        self.adapter = adapter
        self.base_url = checkout.url.rstrip("/")
        where = "checkout.adapter"
        secret: set[str] = set()
        static: dict[str, str] = {}
        for name, value in adapter.headers.items():
            if isinstance(value, SecretRef):
                try:
                    resolved = value.resolve(environ)
                except InvalidTarget as exc:
                    raise InvalidTarget(f"{where}.headers.{name}: {exc}") from None
                secret.add(name)
                if not _HEADER_VALUE.match(resolved):
                    raise InvalidTarget(
                        f"{where}.headers.{name}: the secret from {value.describe()} "
                        "is not a valid header value (control characters)"
                    )
                static[name] = resolved
            else:
                if not _HEADER_VALUE.match(value):
                    raise InvalidTarget(f"{where}.headers.{name}: not a valid header value")
                static[name] = value
        headers_cls = type("_Headers", (_Headers,), {"secret": frozenset(secret)})
        self._secret_names = frozenset(secret)
        self._read_headers: _Headers = headers_cls(static)
        if not any(name.lower() == "content-type" for name in static):
            static = {"Content-Type": "application/json", **static}
        self._headers: _Headers = headers_cls(static)
        self._headers_cls: type[_Headers] = headers_cls
        self._idem = adapter.idempotency_header
        self._path = _compile_path(adapter.path, "key", f"{where}.path")
        self._fixed_url = self.base_url + self._path[0] if len(self._path) == 1 else ""
        self._method = adapter.method
        self._render: Callable[[Cart], bytes] = (
            _render_builtin
            if adapter.body is None
            else compile_template(adapter.body, f"{where}.body")
        )
        self._rules = _compile_rules(adapter)
        self._by_status = _status_table(self._rules)
        self._id_pointers: tuple[tuple[str, ...], ...] = ()
        if adapter.payment_id is not None:
            self._id_pointers = (compile_pointer(adapter.payment_id),)
            if adapter.builtin:  # the built-in API's problems name the payment as payment_id
                self._id_pointers += (("payment_id",),)
        self._id_prefix: bytes | None = None
        first = self._id_pointers[0] if self._id_pointers else ()
        if len(first) == 1 and _URL_SAFE.match(first[0]):  # the first pointer wins anyway
            self._id_prefix = b'{"' + first[0].encode() + b'":"'
        spec = adapter.read_back or (BUILTIN_READ_BACK if adapter.builtin else None)
        self.read_back: ReadBackCall | None = (
            ReadBackCall(self.base_url, spec, self._read_headers, f"{where}.read_back")
            if spec is not None
            else None
        )

    # -- requests ---------------------------------------------------------------

    def url(self, key: str) -> str:
        """The checkout URL for idempotency key ``key``."""
        return self.base_url + _join(self._path, key)

    def body(self, cart: Cart) -> bytes:
        """The request body for ``cart`` (JSON bytes)."""
        return self._render(cart)

    def request(self, cart: Cart) -> PreparedRequest:
        """The checkout request for ``cart`` (hot path: a few microseconds).

        Its headers are a fresh dict (the caller may add to it); one that holds a
        secret never prints its value."""
        # nothing to hide: a plain copy is cheaper than the secret-hiding dict
        headers: dict[str, str] = (
            self._headers_cls(self._headers) if self._secret_names else self._headers.copy()
        )
        if self._idem is not None:
            headers[self._idem] = cart.key
        url = self._fixed_url or self.base_url + _join(self._path, cart.key)
        return PreparedRequest(self._method, url, headers, self._render(cart))

    # -- answers ------------------------------------------------------------------

    def interpret(self, status: int, body: bytes) -> Answer:
        """The verdict and the payment id of one answer (the body parsed at most once).

        Hot path: a status whose first matching rule is a plain status rule is a
        dict look-up, and a payment id that opens a compact JSON answer
        (``{"id":"...``) is a slice; anything else is parsed.
        """
        doc: Any = _MISSING
        outcome: Verdict | None = self._by_status.get(status)
        if outcome is not None:
            prefix = self._id_prefix
            if prefix is not None and body.startswith(prefix):
                end = body.find(b'"', len(prefix))
                if end > len(prefix):
                    value = body[len(prefix) : end]
                    if b"\\" not in value:
                        return Answer(outcome, value.decode())
        else:
            outcome = self._classify_slow(status, body)
        pid = None
        if self._id_pointers and body:
            doc = _parse(body)
            if doc is not _NOT_JSON:
                pid = self._find_id(doc)
        return Answer(outcome, pid)

    def _classify_slow(self, status: int, body: bytes) -> Verdict:
        """The rules in order, reading the body where a rule has a pointer."""
        doc: Any = _MISSING
        outcome: Verdict = "unknown"
        if status != 0:
            for name, rules in self._rules:
                for code, tokens, expected in rules:
                    if code is not None and code != status:
                        continue
                    if tokens is None:
                        outcome = name
                        break
                    if doc is _MISSING:
                        doc = _parse(body)
                    if doc is not _NOT_JSON and _same(_resolve(doc, tokens), expected):
                        outcome = name
                        break
                if outcome != "unknown":
                    break
        return outcome

    def classify(self, status: int, body: bytes) -> Verdict:
        """The outcome of one answer (``"unknown"``: retry with the same key)."""
        return self.interpret(status, body).outcome

    def payment_id(self, body: bytes) -> str | None:
        """The payment id the answer names (``adapter.payment_id``), if any."""
        if not self._id_pointers or not body:
            return None
        doc = _parse(body)
        return None if doc is _NOT_JSON else self._find_id(doc)

    def _find_id(self, doc: Any) -> str | None:
        for tokens in self._id_pointers:
            value = _resolve(doc, tokens)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, int) and not isinstance(value, bool):
                return str(value)
        return None

    def __repr__(self) -> str:
        secrets = sorted(self._secret_names)
        kind = "built-in" if self.adapter.builtin else "template"
        return (
            f"CheckoutClient({self.adapter.method} {self.base_url}{self.adapter.path}, "
            f"{kind} body, secret headers {secrets})"
        )


def _render_builtin(cart: Cart) -> bytes:
    parts = cart.builtin_parts
    if parts is not None and cart.order_id is not None and _URL_SAFE.match(cart.order_id):
        return parts[0] + cart.order_id.encode() + parts[1]  # pre-serialised: a splice
    return orjson.dumps(cart.builtin_body())


_ORDER_MARK = "\x1forder\x1f"
_ORDER_MARK_JSON = orjson.dumps(_ORDER_MARK)[1:-1]


def builtin_parts(cart: Cart) -> tuple[bytes, bytes]:
    """:meth:`Cart.builtin_body` serialised around its ``order_id`` (see :attr:`Cart.builtin_parts`)."""
    marked = Cart(
        cart.key,
        cart.method,
        cart.amount_cents,
        cart.currency,
        cart.customer,
        cart.items,
        cart.payment,
        _ORDER_MARK,
    )
    head, mark, tail = orjson.dumps(marked.builtin_body()).partition(_ORDER_MARK_JSON)
    if not mark:
        raise ValueError("the order id marker did not survive serialisation")
    return head, tail


__all__ = [
    "BUILTIN_READ_BACK",
    "FINAL",
    "LEDGER_OUTCOME",
    "PLACEHOLDERS",
    "Answer",
    "Cart",
    "CheckoutClient",
    "PreparedRequest",
    "ReadBackCall",
    "Verdict",
    "builtin_parts",
    "cents",
    "compile_pointer",
    "compile_template",
]
