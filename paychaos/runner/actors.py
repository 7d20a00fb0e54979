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

:class:`RunCatalog` adds these faults to the chaos layer's catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from paychaos.contracts.domain import CARD_TESTING_FAULT
from paychaos.contracts.errors import FaultInjectionFailed, InvalidFault
from paychaos.contracts.faults import Fault, FaultCatalog, FaultEnv, PreparedFault

CARD_TESTING = CARD_TESTING_FAULT
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


class RunCatalog:
    """The chaos layer's catalog plus the traffic faults (``card-testing``)."""

    def __init__(self, base: FaultCatalog) -> None:
        self.base = base

    def names(self) -> list[str]:
        return sorted([*self.base.names(), CARD_TESTING])

    def validate(self, name: str, params: Mapping[str, object], duration_s: float) -> PreparedFault:
        if name != CARD_TESTING:
            if name not in self.base.names():
                known = ", ".join(self.names())
                raise InvalidFault(f"unknown fault {name!r}; known faults: {known}")
            return self.base.validate(name, params, duration_s)
        if not 0 < duration_s <= MAX_DURATION_S:
            raise InvalidFault(
                f"{CARD_TESTING}: duration_s must be in (0, {MAX_DURATION_S:g}], got {duration_s:g}"
            )
        model = CardTestingParams.model_validate(dict(params))  # ValidationError names the field
        attempts = model.rate_per_s * duration_s
        if attempts > MAX_ATTEMPTS:
            raise InvalidFault(
                f"{CARD_TESTING}: parameter rate_per_s: rate_per_s x duration_s is {attempts:g} "
                f"checkouts; at most {MAX_ATTEMPTS}"
            )
        return PreparedCardTesting(model, duration_s)

    def requires(self, prepared: PreparedFault) -> list[str]:
        if isinstance(prepared, PreparedCardTesting):
            return []  # the shoppers' checkout API, which every target has
        return self.base.requires(prepared)

    def build(self, prepared: PreparedFault, env: FaultEnv) -> Fault:
        if isinstance(prepared, PreparedCardTesting):
            return CardTestingFault(prepared, env)
        return self.base.build(prepared, env)

    def close(self, env: FaultEnv) -> list[str]:
        return self.base.close(env)


def run_catalog(base: FaultCatalog | None = None) -> RunCatalog:
    """The catalog a scenario run uses (the chaos layer's default one, plus the traffic faults)."""
    if base is None:
        from paychaos.chaos.catalog import default_catalog

        base = default_catalog()
    return RunCatalog(base)
