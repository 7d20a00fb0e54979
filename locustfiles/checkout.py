"""Realistic checkout traffic: ``locust -f locustfiles/checkout.py``.

With no ``--host`` it starts the embedded stack and stops it when Locust quits;
with ``--host`` it drives any deployment of the payment API. See the README's
"Traffic (Locust)" section.

The project's options (``--method-mix``, ``--reconcile``, ...) are Locust options,
but ``locust -f locustfiles/checkout.py --help`` cannot list them: Locust prints
``--help`` before it imports any locustfile, so the listener this file adds to
``init_command_line_parser`` is not there yet. ``python locustfiles/checkout.py``
runs Locust on this file with the listener already added: its ``--help`` lists
Locust's options and the project's, and any other arguments go to Locust as they are.
"""

from __future__ import annotations

from locust import events

from paychaos.locust.plugin import install
from paychaos.traffic.browser_shopper import BrowserShopper
from paychaos.traffic.shopper import Shopper

__all__ = ["BrowserShopper", "Shopper"]

install(events)


if __name__ == "__main__":  # python locustfiles/checkout.py [Locust options]
    import sys

    from locust.main import main

    sys.argv = ["locust", "-f", __file__, *sys.argv[1:]]
    sys.exit(main())
