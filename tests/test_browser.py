"""The test browser (tests/browser.py) leaves nothing in the system's temporary directory,
closed or killed: Chromium's singleton directory and shared-memory files go to a TMPDIR
of the browser's own, removed with it."""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import pytest

from tests.browser import Browser

pytestmark = pytest.mark.integration


def _singleton_dir(page: Browser) -> Path:
    """Where this Chromium made its singleton socket (the profile links to it)."""
    return Path(os.readlink(page.profile / "SingletonSocket")).parent


def test_a_closed_browser_leaves_nothing_in_tmp(tmp_path: Path) -> None:
    with Browser(tmp_path) as page:
        page.goto("data:text/html,<p id=x>ready</p>")
        assert page.text("#x") == "ready"
        singleton = _singleton_dir(page)
        own = page.tmpdir
        assert singleton.parent == own, singleton  # not /tmp/org.chromium.Chromium.*
        assert singleton.is_dir()
        group = page.proc.pid
    assert not own.exists() and not page.profile.exists()
    assert not (Path(tempfile.gettempdir()) / singleton.name).exists()
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)  # nothing of it runs on


def test_a_killed_browser_leaves_nothing_in_tmp(tmp_path: Path) -> None:
    """SIGKILL (a crash): Chromium cannot clean up; its directory goes with the browser's."""
    with Browser(tmp_path) as page:
        page.goto("data:text/html,<p>ready</p>")
        singleton = _singleton_dir(page)
        own = page.tmpdir
        os.kill(page.proc.pid, signal.SIGKILL)
        page.proc.wait(timeout=10)
        assert singleton.is_dir()  # left behind by the killed browser, inside its own TMPDIR
        group = page.proc.pid
    assert not own.exists() and not page.profile.exists()
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)
