"""The embedded stack (local processes) behind the backend interface.

:class:`~paychaos.stack.embedded.EmbeddedStack` already is one (``start``,
``stop``, ``describe``, ``target``); this module names it for the backend list.
"""

from __future__ import annotations

from paychaos.stack.embedded import EmbeddedStack as EmbeddedBackend

__all__ = ["EmbeddedBackend"]
