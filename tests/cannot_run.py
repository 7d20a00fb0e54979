"""The project's rule for a test whose requirement this machine lacks: it skips with the
reason, and under ``CI=true`` fails with it (CI installs everything the tests need)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def cannot_run(reason: str) -> NoReturn:
    """Skip with ``reason``; under ``CI=true``, fail with it."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)
