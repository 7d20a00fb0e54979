"""A real headless browser for UI tests: :mod:`paychaos.traffic.chromium`, which skips
without Chromium (fails under ``CI=true``; ``make test-deps`` installs it).

Example::

    with Browser(tmp_path) as page:
        page.goto("http://127.0.0.1:8089/?tab=paychaos-chaos")
        page.wait("!!document.getElementById('paychaos-chaos-panel')", 30)
        page.click("#paychaos-inject")
"""

from __future__ import annotations

from pathlib import Path

from paychaos.traffic import chromium as driver
from paychaos.traffic.chromium import FLAGS, BrowserError, Usage
from tests.cannot_run import cannot_run

__all__ = ["FLAGS", "Browser", "BrowserError", "Usage", "chromium"]


def chromium() -> str:
    """Chromium's path; skips without it (fails under CI=true)."""
    path = driver.find_chromium()
    if path:
        return path
    cannot_run(driver.NO_CHROMIUM)


class Browser(driver.Browser):
    """One headless Chromium with one page; a context manager that stops it by pid."""

    def __init__(self, tmp: Path, timeout_s: float = 30.0) -> None:
        chromium()
        super().__init__(tmp, timeout_s)
