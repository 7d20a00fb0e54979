"""Faults that are traffic: an adversary among the shoppers, on the scenario's timeline.

Some ways checkout breaks are not a component failing but a *client* behaving
badly. ``card-testing`` is one: a single customer paying small amounts with card
after card, declined by the processor's card-testing screen. On a scenario's
timeline it is a fault step like any other (``at_s``, ``duration_s``, an ``id``
that expectations name in ``after``)::

    faults:
      - {id: card-tester, fault: card-testing, at_s: 10, duration_s: 20,
         params: {rate_per_s: 4, method: visa, cards: 40}}

Injecting it starts the tester in the run's traffic driver
(:meth:`paychaos.runner.traffic.AsyncTrafficDriver.start_card_testing`), with a
customer the run draws from the shoppers' pool; reverting it stops the tester.
It is bounded (at most ``rate_per_s * duration_s`` checkouts, never past its
duration) and ends by itself. What was injected (the customer id...) is the
fault's ``facts``: the run records it, and the ``culprit`` expectation compares
it with the customer the telemetry names.

``broken-pay-button`` is another: the checkout page's pay button throws a
JavaScript error (a front-end release broke it), so the checkout is never sent
and no backend sees a thing; only the browsers' RUM (Faro exceptions with
context ``method`` and ``screen: checkout``) can tell::

    faults:
      - {id: broken-button, fault: broken-pay-button, at_s: 10, duration_s: 25,
         params: {method: paypal, share: 1.0}}

Injecting it breaks the button in the run's traffic driver
(:meth:`paychaos.runner.traffic.AsyncTrafficDriver.break_pay_button`) until its
deadline (it mends by itself then, and when the driver stops); reverting it
mends it at once and records how many clicks it broke.

:class:`RunCatalog` adds these faults to the chaos layer's catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from paychaos.contracts.domain import BROKEN_PAY_BUTTON_FAULT, CARD_TESTING_FAULT, METHODS
from paychaos.contracts.errors import FaultInjectionFailed, InvalidFault
from paychaos.contracts.faults import Fault, FaultCatalog, FaultEnv, PreparedFault
from paychaos.traffic.rum import JS_ERRORS

CARD_TESTING = CARD_TESTING_FAULT
BROKEN_PAY_BUTTON = BROKEN_PAY_BUTTON_FAULT
#: Traffic faults by name (the run's shoppers carry them out).
TRAFFIC_FAULTS = (BROKEN_PAY_BUTTON, CARD_TESTING)
#: At most this many checkouts per card tester (rate_per_s x duration_s).
MAX_ATTEMPTS = 2000
MAX_DURATION_S = 600.0


class CardTestingParams(BaseModel):
    """``rate_per_s`` checkouts a second, cycling through ``cards`` test cards of ``method``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    rate_per_s: float = Field(gt=0, le=50)
    method: Literal["visa", "amex"] = "visa"
    cards: int = Field(default=40, ge=2, le=1000)


class PreparedCardTesting:
    """A validated ``card-testing`` step."""

    name = CARD_TESTING

    def __init__(self, params: CardTestingParams, duration_s: float) -> None:
        self.params, self.duration_s = params, duration_s

    def param_dict(self) -> dict[str, Any]:
        return self.params.model_dump()


class CardTestingDriver(Protocol):
    """What a traffic driver offers to run a card tester."""

    def start_card_testing(
        self, actor: str, *, rate_per_s: float, duration_s: float, method: str, cards: int
    ) -> dict[str, str]: ...

    def stop_actor(self, actor: str) -> dict[str, int]: ...


class CardTestingFault:
    """Starts the tester in the run's traffic driver; ``revert`` stops it (idempotent)."""

    name = CARD_TESTING
    target = "traffic/card-tester"

    def __init__(self, prepared: PreparedCardTesting, env: FaultEnv) -> None:
        self.prepared, self.env = prepared, env
        self.facts: dict[str, Any] = {}
        self._actor = f"card-tester-{id(self):x}"
        self._running = False

    def inject(self) -> None:
        driver = self.env.traffic
        start = getattr(driver, "start_card_testing", None)
        if start is None:
            raise FaultInjectionFailed(
                f"{CARD_TESTING}: the run's traffic driver ({type(driver).__name__}) "
                "cannot run a card tester"
            )
        params = self.prepared.params
        self.facts = dict(
            start(
                self._actor,
                rate_per_s=params.rate_per_s,
                duration_s=self.prepared.duration_s,
                method=params.method,
                cards=params.cards,
            )
        )
        self._running = True

    def revert(self) -> None:
        if not self._running:
            return
        self._running = False
        counts = self.env.traffic.stop_actor(self._actor)
        self.facts.update({k: str(v) for k, v in counts.items()})


#: The error a broken pay button throws (the shop's checkout bundle, as a browser reports it).
BUTTON_ERRORS: dict[str, tuple[str, str]] = dict(
    zip(("TypeError", "ReferenceError", "ChunkLoadError"), JS_ERRORS, strict=True)
)


class BrokenPayButtonParams(BaseModel):
    """``share`` of the pay-button clicks of ``method`` (``*``: any) throw ``error``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    method: str = "*"
    share: float = Field(default=1.0, gt=0, le=1)
    error: Literal["TypeError", "ReferenceError", "ChunkLoadError"] = "TypeError"

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        if method != "*" and method not in METHODS:
            raise ValueError(f"must be '*' (every method) or one of {', '.join(METHODS)}")
        return method


class PreparedBrokenPayButton:
    """A validated ``broken-pay-button`` step."""

    name = BROKEN_PAY_BUTTON

    def __init__(self, params: BrokenPayButtonParams, duration_s: float) -> None:
        self.params, self.duration_s = params, duration_s

    def param_dict(self) -> dict[str, Any]:
        return self.params.model_dump()


class BrokenPayButtonDriver(Protocol):
    """What a traffic driver offers to break the shoppers' pay button."""

    def break_pay_button(
        self,
        actor: str,
        *,
        duration_s: float,
        share: float = 1.0,
        method: str | None = None,
        error: tuple[str, str] = ...,
    ) -> dict[str, str]: ...

    def stop_actor(self, actor: str) -> dict[str, int]: ...


class BrokenPayButtonFault:
    """Breaks the button in the run's traffic driver until the step's deadline (it mends
    by itself then); ``revert`` mends it at once (idempotent)."""

    name = BROKEN_PAY_BUTTON
    target = "traffic/pay-button"

    def __init__(self, prepared: PreparedBrokenPayButton, env: FaultEnv) -> None:
        self.prepared, self.env = prepared, env
        self.facts: dict[str, Any] = {}
        self._actor = f"pay-button-{id(self):x}"
        self._broken = False

    def inject(self) -> None:
        driver = self.env.traffic
        brk = getattr(driver, "break_pay_button", None)
        if brk is None:
            raise FaultInjectionFailed(
                f"{BROKEN_PAY_BUTTON}: the run's traffic driver ({type(driver).__name__}) "
                "has no pay button to break"
            )
        params = self.prepared.params
        self.facts = dict(
            brk(
                self._actor,
                duration_s=self.prepared.duration_s,
                share=params.share,
                method=None if params.method == "*" else params.method,
                error=BUTTON_ERRORS[params.error],
            )
        )
        self._broken = True

    def revert(self) -> None:
        if not self._broken:
            return
        self._broken = False
        counts = self.env.traffic.stop_actor(self._actor)
        self.facts.update({k: str(v) for k, v in counts.items()})


def _check_duration(name: str, duration_s: float) -> None:
    if not 0 < duration_s <= MAX_DURATION_S:
        raise InvalidFault(
            f"{name}: duration_s must be in (0, {MAX_DURATION_S:g}], got {duration_s:g}"
        )


class RunCatalog:
    """The chaos layer's catalog plus the traffic faults (``card-testing``,
    ``broken-pay-button``)."""

    def __init__(self, base: FaultCatalog) -> None:
        self.base = base

    def names(self) -> list[str]:
        return sorted([*self.base.names(), *TRAFFIC_FAULTS])

    def validate(self, name: str, params: Mapping[str, object], duration_s: float) -> PreparedFault:
        if name == BROKEN_PAY_BUTTON:
            _check_duration(name, duration_s)
            button = BrokenPayButtonParams.model_validate(dict(params))  # names the field
            return PreparedBrokenPayButton(button, duration_s)
        if name != CARD_TESTING:
            if name not in self.base.names():
                known = ", ".join(self.names())
                raise InvalidFault(f"unknown fault {name!r}; known faults: {known}")
            return self.base.validate(name, params, duration_s)
        _check_duration(name, duration_s)
        model = CardTestingParams.model_validate(dict(params))  # ValidationError names the field
        attempts = model.rate_per_s * duration_s
        if attempts > MAX_ATTEMPTS:
            raise InvalidFault(
                f"{CARD_TESTING}: parameter rate_per_s: rate_per_s x duration_s is {attempts:g} "
                f"checkouts; at most {MAX_ATTEMPTS}"
            )
        return PreparedCardTesting(model, duration_s)

    def requires(self, prepared: PreparedFault) -> list[str]:
        if isinstance(prepared, PreparedCardTesting | PreparedBrokenPayButton):
            return []  # the shoppers (and their checkout API, which every target has)
        return self.base.requires(prepared)

    def build(self, prepared: PreparedFault, env: FaultEnv) -> Fault:
        if isinstance(prepared, PreparedCardTesting):
            return CardTestingFault(prepared, env)
        if isinstance(prepared, PreparedBrokenPayButton):
            return BrokenPayButtonFault(prepared, env)
        return self.base.build(prepared, env)

    def close(self, env: FaultEnv) -> list[str]:
        return self.base.close(env)


def run_catalog(base: FaultCatalog | None = None) -> RunCatalog:
    """The catalog a scenario run uses (the chaos layer's default one, plus the traffic faults)."""
    if base is None:
        from paychaos.chaos.catalog import default_catalog

        base = default_catalog()
    return RunCatalog(base)
