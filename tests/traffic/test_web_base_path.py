"""paychaos's tabs in Locust's web UI under ``--web-base-path``: the routes paychaos adds
go under the base path, and the Chaos tab's script (in headless Chromium) calls its API
there, beside the address it was loaded from. No stack, no load: a probe process serves
Locust's UI (``locust_base_path_probe.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from paychaos.stack.service import free_port
from tests.browser import Browser, chromium

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("locust_base_path_probe.py")
BASE = "/load"
NO_STACK = "no stack in this probe"  # the probe's StackError


@contextmanager
def _locust_ui(base: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(PROBE), str(port), base],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", (
            proc.stderr.read() if proc.stderr else ""
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the probe stops when its stdin closes
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _get(url: str) -> tuple[int, str, str]:
    """(status, body, Location) without following a redirect."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=10) as resp:
            return resp.status, resp.read().decode(), resp.headers.get("Location", "")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), err.headers.get("Location", "")


def test_the_routes_go_under_the_base_path() -> None:
    with _locust_ui(BASE) as web:
        status, index, _ = _get(web + BASE + "/")
        assert status == 200 and f'<script src="{BASE}/paychaos/chaos-tab.js"' in index
        assert _get(web + BASE + "/paychaos/chaos-tab.js")[0] == 200
        assert _get(web + BASE + "/chaos")[2].endswith(f"{BASE}/?tab=paychaos-chaos")
        status, body, _ = _get(web + BASE + "/chaos/api/faults")
        assert status == 503 and NO_STACK in json.loads(body)["error"]
        status, body, _ = _get(web + BASE + "/paychaos/payments")
        assert status == 200 and json.loads(body)["rows"][0]["method"] == "visa"
        status, body, _ = _get(web + BASE + "/stats/requests")
        keys = {e["key"] for e in json.loads(body)["extended_stats"]}
        assert {"payments", "paychaos-chaos"} <= keys
        # nothing of paychaos's is left at the root, where Locust no longer is
        assert _get(web + "/chaos/api/faults")[0] == 404
        assert _get(web + "/paychaos/payments")[0] == 404


def test_the_tabs_work_under_the_base_path_in_a_real_browser(tmp_path: Path) -> None:
    chromium()  # skips without it (fails under CI=true)
    with _locust_ui(BASE) as web, Browser(tmp_path) as page:
        page.goto(web + BASE + "/?tab=paychaos-chaos")
        message = page.wait(
            "document.querySelector('#paychaos-chaos-message')?.innerText", 30, "the tab's message"
        )
        # the script reached the tab's API under the base path: its JSON error, not a 404
        assert NO_STACK in message and "404" not in message, message
        fetched = page.eval(
            "performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)"
        )
        assert f"{BASE}/chaos/api/faults" in fetched, fetched
        assert "/chaos/api/faults" not in fetched, fetched
        page.goto(web + BASE + "/?tab=payments")
        row = page.wait(
            "[...document.querySelectorAll('.MuiTableContainer-root tbody tr')]"
            ".map(r => r.innerText).find(t => t.includes('visa'))",
            30,
            "the Payments row",
        )
        assert "succeeded" in row, row
