"""The project's rule for a test whose requirement this machine lacks: it skips with the
reason, and under ``CI=true`` fails with it (CI installs everything the tests need)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True under CI (``CI`` set to anything but empty, ``0``, ``false`` or ``no``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def cannot_run(reason: str) -> NoReturn:
    """Skip with ``reason``; under CI (:func:`in_ci`), fail with it."""
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def skip_unless_ci(missing: str | None) -> pytest.MarkDecorator:
    """A module or test mark for a requirement checked at collection: ``missing`` is why
    it cannot run here (None: it can). Outside CI the test skips with that reason; under
    ``CI=true`` it runs anyway and fails on the missing requirement's own error."""
    return pytest.mark.skipif(missing is not None and not in_ci(), reason=str(missing))
