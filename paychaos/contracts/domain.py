"""Domain facts, declared once: payment methods, the default mix, components, dependencies.

Every other module takes these names from here (the CLI's ``--mix``, the
scenario schema, the shoppers, the gateway faults, the process faults).

Example::

    from paychaos.contracts.domain import METHODS, DEFAULT_MIX
    DEFAULT_MIX["amex"]        # 10.0 (shares in percent; they need not sum to 100)
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, get_args

Method = Literal["visa", "paypal", "amex", "crypto"]
#: The payment methods of the seed's shop, in the order reports list them.
METHODS: tuple[Method, ...] = get_args(Method)

#: The default traffic mix (percent): amex is the least-used method, as in the seed's §6.1.
DEFAULT_MIX: Mapping[str, float] = MappingProxyType(
    {"visa": 45.0, "paypal": 30.0, "crypto": 15.0, "amex": 10.0}
)

Component = Literal[
    "api", "gateway", "postgres", "proxy", "collector", "prometheus", "alertmanager"
]
#: The components of the built-in stacks (a process, or a container, each).
COMPONENTS: tuple[Component, ...] = get_args(Component)

Dependency = Literal["database", "gateway"]
#: What the checkout API depends on; a Toxiproxy proxy may stand in front of each.
DEPENDENCIES: tuple[Dependency, ...] = get_args(Dependency)

CARD_TESTING_FAULT = "card-testing"
BROKEN_PAY_BUTTON_FAULT = "broken-pay-button"
"""The fault that is a card tester among the shoppers (one customer, card after card)."""
CUSTOMER_SPAN_ATTRIBUTE = "customer.id"
"""Who pays, on the checkout span (an attribute, never a metric label: cardinality)."""
CUSTOMER_LOG_ATTRIBUTE = "customer_id"
"""Who pays, on the checkout's log records."""


def parse_mix(text: str) -> dict[Method, float]:
    """``"visa=45,paypal=30,crypto=15,amex=10"`` → shares; raises ``ValueError`` with a sentence.

    >>> parse_mix("visa=3,amex=1")
    {'visa': 3.0, 'amex': 1.0}
    """
    mix: dict[Method, float] = {}
    for part in text.split(","):
        name, sep, share = part.partition("=")
        name = name.strip()
        if name not in METHODS:
            raise ValueError(
                f"unknown payment method {name!r} in {text!r}; methods: {', '.join(METHODS)}"
            )
        if not sep:
            raise ValueError(f"{name} needs a share, as in {name}=10")
        try:
            value = float(share)
        except ValueError:
            raise ValueError(f"the share of {name} must be a number, got {share!r}") from None
        if value < 0 or value != value:
            raise ValueError(f"the share of {name} must not be negative, got {share!r}")
        mix[name] = value  # name is one of METHODS (checked above)
    if sum(mix.values()) <= 0:
        raise ValueError("at least one share must be positive")
    return mix


__all__ = [
    "BROKEN_PAY_BUTTON_FAULT",
    "CARD_TESTING_FAULT",
    "COMPONENTS",
    "CUSTOMER_LOG_ATTRIBUTE",
    "CUSTOMER_SPAN_ATTRIBUTE",
    "DEFAULT_MIX",
    "DEPENDENCIES",
    "METHODS",
    "Component",
    "Dependency",
    "Method",
    "parse_mix",
]
