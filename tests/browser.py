"""A real headless browser for UI tests: Debian's Chromium, driven over the DevTools protocol.

Clicks and typing go through the browser's input pipeline (``Input.dispatchMouseEvent``,
``Input.insertText``), as a person's would. Chromium talks to loopback only: background
networking, component updates and sync are off. Without Chromium a test skips, and
fails under ``CI=true`` (``make system-deps`` installs it).

Nothing is left in ``/tmp``: Chromium puts its singleton socket (a
``org.chromium.Chromium.XXXXXX`` directory) and, with ``--disable-dev-shm-usage``, its
shared-memory files in ``$TMPDIR``, and leaves the directory behind when it is killed
rather than closed. So each browser gets a ``TMPDIR`` of its own, a short
``paychaos-chromium-*`` directory (the socket's path must fit in 107 bytes, which a
pytest ``tmp_path`` can exceed), is closed over DevTools (``Browser.close``) before any
signal, and that directory is removed with the profile on every exit path.

Example::

    with Browser(tmp_path) as page:
        page.goto("http://127.0.0.1:8089/?tab=paychaos-chaos")
        page.wait("!!document.getElementById('paychaos-chaos-panel')", 30)
        page.click("#paychaos-inject")
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import websocket

FLAGS = (
    "--headless=new",
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--window-size=1280,1000",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def chromium() -> str:
    """Chromium's path; skips without it (fails under CI=true)."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    reason = "no Chromium (apt-get install chromium, or make system-deps)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


class BrowserError(AssertionError):
    pass


class Browser:
    """One headless Chromium with one page; a context manager that stops it by pid."""

    def __init__(self, tmp: Path, timeout_s: float = 30.0) -> None:
        self.profile = tmp / "chromium-profile"
        self.profile.mkdir(parents=True, exist_ok=True)
        binary = chromium()
        self.tmpdir = Path(tempfile.mkdtemp(prefix="paychaos-chromium-"))
        self.ws: websocket.WebSocket | None = None
        self._id = 0
        try:
            self.proc = subprocess.Popen(
                [binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "TMPDIR": str(self.tmpdir)},
                start_new_session=True,
            )
        except BaseException:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            raise
        try:
            port = self._devtools_port(timeout_s)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
            self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30)
        except BaseException:
            self._stop()
            raise

    def _devtools_port(self, timeout_s: float) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrowserError(f"Chromium exited ({self.proc.returncode}) at start")
            with contextlib.suppress(OSError, ValueError, IndexError):
                return int(marker.read_text().splitlines()[0])
            time.sleep(0.1)
        raise BrowserError(f"Chromium did not open its DevTools port within {timeout_s:g}s")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        assert self.ws is not None, "no DevTools connection"
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:  # events in between are not needed here
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))

    def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        out = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in out:
            raise BrowserError(f"{expression}: {out['exceptionDetails']}")
        return out["result"].get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait("document.readyState === 'complete'", 30)

    def wait(self, expression: str, timeout_s: float, what: str = "") -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout_s
        value = None
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.2)
        raise BrowserError(f"not within {timeout_s:g}s: {what or expression} (last: {value!r})")

    def _center(self, selector: str) -> tuple[float, float]:
        box = self.eval(
            f"(() => {{const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2];})()"
        )
        if not box:
            raise BrowserError(f"no element {selector}")
        return float(box[0]), float(box[1])

    def click(self, selector: str) -> None:
        """A mouse click at the element's centre."""
        x, y = self._center(selector)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def fill(self, selector: str, text: str) -> None:
        """Click into a field, select what it holds and type ``text`` over it."""
        self.click(selector)
        self.eval(f"document.querySelector({json.dumps(selector)}).select()")
        self.send("Input.insertText", text=text)

    def choose(self, selector: str, value: str) -> None:
        """Pick an option of a ``<select>`` (its popup is native: set it and fire change)."""
        ok = self.eval(
            f"(() => {{const e = document.querySelector({json.dumps(selector)});"
            f" if (!e || ![...e.options].some(o => o.value === {json.dumps(value)})) return false;"
            f" e.focus(); e.value = {json.dumps(value)};"
            " e.dispatchEvent(new Event('change', {bubbles: true})); return true;})()"
        )
        if not ok:
            raise BrowserError(f"no option {value!r} in {selector}")

    def text(self, selector: str) -> str:
        return str(
            self.eval(f"(document.querySelector({json.dumps(selector)}) || {{}}).innerText || ''")
        )

    def screenshot(self, path: Path) -> Path:
        import base64

        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def _stop(self) -> None:
        if self.ws is not None and self.proc.poll() is None:
            # closed, not killed: a killed Chromium leaves its singleton directory behind
            with contextlib.suppress(Exception):
                self.send("Browser.close")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        with contextlib.suppress(Exception):
            if self.ws is not None:
                self.ws.close()
        # what is left of its process group (all of it if it did not close, else the
        # helpers still winding down): SIGTERM, then SIGKILL after 10 s
        group = self.proc.pid
        self._signal_group(group, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while self._group_alive(group) and time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=0.1)
        if self._group_alive(group):
            self._signal_group(group, signal.SIGKILL)
        self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    @staticmethod
    def _signal_group(group: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, sig)

    @staticmethod
    def _group_alive(group: int) -> bool:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()
