"""The simulated browser's RUM: Faro-format payloads, one POST per shopper journey.

A real page batches what the Grafana Faro web SDK collects and sends it to
``<collector>/collect``; a shopper here does the same: :class:`Journey`
collects page views (web-vitals measurements), cart events, the seed's
``click_payment_button`` event (``method``, ``cart_value``), JS exceptions
(context ``method`` + ``screen: checkout``) and the outcome, then
:class:`~paychaos.traffic.rum_sender.RumSender` serialises and posts it from
a background greenlet, off the shopper's path. A journey only records
compact items on the shopper's hot path; :meth:`Journey.payload` builds the
Faro body (run by the sender)::

    journey = Journey.start(rng, session_id="s1", page_url="https://shop.example/")
    journey.page_view(rng, "product")
    journey.event("click_payment_button", {"method": "visa", "cart_value": "100.00"})
    sender.submit(journey)
"""

from __future__ import annotations

import bisect
import functools
import itertools
import random
import time
from datetime import UTC, datetime
from typing import Any

import orjson

APP = {"name": "shop-frontend", "version": "1.4.2", "environment": "simulation"}
BROWSERS: tuple[dict[str, Any], ...] = (
    {"name": "Chrome", "version": "124.0", "os": "Windows 10", "mobile": False},
    {"name": "Safari", "version": "17.4", "os": "iOS 17.4", "mobile": True},
    {"name": "Chrome", "version": "124.0", "os": "Android 14", "mobile": True},
    {"name": "Firefox", "version": "125.0", "os": "Ubuntu", "mobile": False},
)
BROWSER_WEIGHTS: tuple[float, ...] = (45, 25, 20, 10)
JS_ERRORS = (
    ("TypeError", "Cannot read properties of undefined (reading 'token')"),
    ("ReferenceError", "paymentSdk is not defined"),
    ("Error", "Payment widget failed to load: ChunkLoadError"),
)
SDK = {"name": "@grafana/faro-web-sdk", "version": "1.7.0"}


_ISO_SECOND: list[Any] = [None, ""]  # (whole second, "YYYY-MM-DDTHH:MM:SS") of the last call
_ISO_MS: list[Any] = [None, b""]  # (millisecond, b'"...Z"') of the last call


def _iso(ts: float) -> str:
    """``ts`` as RFC 3339 UTC with milliseconds (the seconds part cached: hot path)."""
    second = int(ts)
    if _ISO_SECOND[0] != second:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _ISO_SECOND[0], _ISO_SECOND[1] = second, text
    return f"{_ISO_SECOND[1]}.{int((ts - second) * 1000):03d}Z"


iso_timestamp = _iso
"""``ts`` (unix seconds) as Faro's RFC 3339 UTC timestamp with milliseconds."""


def _iso_json(ts: float) -> bytes:
    """:func:`_iso` as a JSON string (cached per millisecond: many events share one)."""
    ms = int(ts * 1000)
    if _ISO_MS[0] != ms:
        _ISO_MS[0], _ISO_MS[1] = ms, b'"' + _iso(ts).encode() + b'"'
    cached: bytes = _ISO_MS[1]
    return cached


def web_vitals(rng: random.Random, slow: float = 1.0) -> dict[str, float]:
    """One page's Core Web Vitals, lognormal like the field data (ms, CLS unitless)."""
    lcp = rng.lognormvariate(7.3, 0.45) * slow  # median ~1.5 s
    return {
        "ttfb": round(rng.lognormvariate(5.3, 0.5) * slow, 1),
        "fcp": round(lcp * rng.uniform(0.45, 0.8), 1),
        "lcp": round(lcp, 1),
        "cls": round(rng.lognormvariate(-3.2, 1.0), 4),
        "inp": round(rng.lognormvariate(4.9, 0.6), 1),
        "fid": round(rng.lognormvariate(2.7, 0.8), 1),
    }


_VITALS_POOL: list[bytes] = []
_VITALS_POOL_BITS = 12
VITALS_POOL_SIZE = 1 << _VITALS_POOL_BITS


def _vitals_pool(rng: random.Random) -> list[bytes]:
    """The per-process pool of serialised :func:`web_vitals` (same distribution, O(1) draws)."""
    if not _VITALS_POOL:
        pool_rng = random.Random(rng.getrandbits(64))
        _VITALS_POOL[:] = [orjson.dumps(web_vitals(pool_rng)) for _ in range(VITALS_POOL_SIZE)]
    return _VITALS_POOL


@functools.lru_cache(maxsize=256)
def _json_str(text: str) -> bytes:
    return orjson.dumps(text)


@functools.lru_cache(maxsize=64)
def _page_parts(page: str) -> tuple[str, bytes, bytes]:
    """(page URL, the page_view event up to its timestamp, the measurement after it)."""
    attributes = orjson.dumps({"page": page})
    event = b'{"name":"page_view","domain":"shop","attributes":' + attributes + b',"timestamp":'
    return f"https://shop.example/{page}", event, b',"context":' + attributes + b"}"


_BROWSER_CUM = tuple(itertools.accumulate(BROWSER_WEIGHTS))
# "app", "sdk" and "browser" of the Faro meta, serialised once per browser.
_META_CONST = {id(b): orjson.dumps({"app": APP, "sdk": SDK, "browser": b})[1:-1] for b in BROWSERS}
_PAGE_VIEW = 0
_EVENT = 1
# (_PAGE_VIEW, unix time, _page_parts(page), vitals JSON, None)
# | (_EVENT, unix time, name, attributes JSON, trace ids or None)
_Item = tuple[int, float, Any, bytes, "tuple[str, str] | None"]
_MEASUREMENT_HEAD = b',{"type":"web-vitals","values":'
_EVENT_MID = b',"domain":"shop","attributes":'
_TIMESTAMP = b',"timestamp":'


class Journey:
    """What one shopper's browser collected during one visit (one Faro body).

    The hot path of a shopper only appends compact items (a page view is a
    tuple: page, time, a draw from the web-vitals pool); :meth:`payload`,
    called by the sender's greenlet, turns them into the Faro body.
    """

    __slots__ = ("_exceptions", "_items", "_start_url", "attributes", "browser", "session_id")

    def __init__(
        self,
        session_id: str,
        page_url: str,
        browser: dict[str, Any],
        attributes: dict[str, str] | None = None,
    ) -> None:
        self.session_id = session_id
        self._start_url = page_url
        self.browser = browser
        self.attributes = attributes or {}
        self._items: list[_Item] = []
        self._exceptions: list[bytes] = []

    @classmethod
    def start(
        cls,
        rng: random.Random,
        session_id: str,
        page_url: str,
        attributes: dict[str, str] | None = None,
    ) -> Journey:
        browser = BROWSERS[bisect.bisect(_BROWSER_CUM, rng.random() * _BROWSER_CUM[-1])]
        return cls(session_id, page_url, browser, attributes)

    @property
    def page_url(self) -> str:
        """The page the browser is on (the last page view's)."""
        for item in reversed(self._items):
            if item[0] == _PAGE_VIEW:
                url: str = item[2][0]
                return url
        return self._start_url

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(orjson.loads(self.payload())["events"])

    @property
    def measurements(self) -> list[dict[str, Any]]:
        return list(orjson.loads(self.payload())["measurements"])

    @property
    def exceptions(self) -> list[dict[str, Any]]:
        return [orjson.loads(item) for item in self._exceptions]

    def event(
        self, name: str, attributes: dict[str, str], trace: tuple[str, str] | None = None
    ) -> None:
        self._items.append((_EVENT, time.time(), name, orjson.dumps(attributes), trace))

    def event_json(
        self, name: str, attributes_json: bytes, trace: tuple[str, str] | None = None
    ) -> None:
        """:meth:`event` with the attributes already serialised (a JSON object of strings)."""
        self._items.append((_EVENT, time.time(), name, attributes_json, trace))

    def page_view(self, rng: random.Random, page: str) -> None:
        """A page load: a ``page_view`` event and its ``web-vitals`` measurement."""
        vitals = _VITALS_POOL or _vitals_pool(rng)
        vitals_json = vitals[rng.getrandbits(_VITALS_POOL_BITS)]
        self._items.append((_PAGE_VIEW, time.time(), _page_parts(page), vitals_json, None))

    def exception(
        self, rng: random.Random, method: str, error: tuple[str, str] | None = None
    ) -> None:
        """A JS exception on the checkout page (``error``: its type and message; default:
        one of :data:`JS_ERRORS` drawn), context ``method`` and ``screen: checkout``."""
        kind, message = error or rng.choice(JS_ERRORS)
        self._exceptions.append(
            orjson.dumps(
                {
                    "type": kind,
                    "value": message,
                    "timestamp": _iso(time.time()),
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": "https://shop.example/static/js/checkout.8f3a1c.js",
                                "function": "handlePay",
                                "lineno": 214,
                                "colno": 17,
                            }
                        ]
                    },
                    "context": {"method": method, "screen": "checkout"},
                }
            )
        )

    def raw_exception(self, exception_json: bytes) -> None:
        """A Faro exception already serialised (a JSON object: type, value, timestamp, ...)."""
        self._exceptions.append(exception_json)

    def payload(self) -> bytes:
        """The Faro ``TransportBody`` of this journey, serialised."""
        events: list[bytes] = []
        measurements: list[bytes] = []
        page_url = self._start_url
        last_ms, ts = -1, b""
        for kind, unix_s, what, data, trace in self._items:
            ms = int(unix_s * 1000)
            if ms != last_ms:  # a visit's items mostly share their millisecond
                last_ms, ts = ms, _iso_json(unix_s)
            if kind == _PAGE_VIEW:
                page_url, event, context = what
                events += (b",", event, ts, b"}")
                measurements += (_MEASUREMENT_HEAD, data, _TIMESTAMP, ts, context)
                continue
            events += (b',{"name":', _json_str(what), _EVENT_MID, data, _TIMESTAMP, ts)
            if trace:
                ids = b',"trace":{"trace_id":%s,"span_id":%s}' % (
                    orjson.dumps(trace[0]),
                    orjson.dumps(trace[1]),
                )
                events.append(ids)
            events.append(b"}")
        const = _META_CONST.get(id(self.browser))
        if const is None:
            const = orjson.dumps({"app": APP, "sdk": SDK, "browser": self.browser})[1:-1]
        session = orjson.dumps(
            {
                "session": {"id": self.session_id, "attributes": self.attributes},
                "page": {"url": page_url},
            }
        )
        return b"".join(
            (
                b'{"meta":{',
                const,
                b",",
                session[1:],
                b',"events":[',
                b"".join(events)[1:],
                b'],"measurements":[',
                b"".join(measurements)[1:],
                b'],"exceptions":[',
                b",".join(self._exceptions),
                b"]}",
            )
        )
