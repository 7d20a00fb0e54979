"""Browser shoppers: ``--browser-users N`` beside the protocol-level shoppers, in real
headless Chromium on the checkout page, as ``locust -f locustfiles/checkout.py`` runs.

Locust (a subprocess, headless) starts the embedded stack with the page; two of its
three users are browsers. Their checkouts must be in the client ledger and reconcile
with the API's; their RUM (``click_payment_button`` with ``method`` and
``cart_value``) and their traces (the browser's ``checkout`` span down to the
``INSERT``) must be in the collector, from the real Faro SDK; every browser must be
gone at the end, with its scratch directory. Needs the built page (``make webapp``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

from paychaos.contracts.signals import RumQuery
from paychaos.stack.collector.client import CollectorClient
from paychaos.stack.webapp import BUILD_HINT, DIST_DIR, built
from tests.browser import chromium
from tests.cannot_run import cannot_run
from tests.traffic.traffic_testkit import run_locust, start_locust, stored_collector, wait_gone

pytestmark = pytest.mark.integration


def _scratch_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("paychaos-shopper-*")}


def test_browser_users_check_out_beside_the_protocol_shoppers(tmp_path: Path) -> None:
    chromium()
    if not built(DIST_DIR):
        cannot_run(f"the checkout page is not built; {BUILD_HINT}")
    before = _scratch_dirs()
    # The gateway at the suite's speed (0.05 of its default profile): at the default,
    # 1 crypto charge in 27 outlasts the API's 2 s gateway timeout (lognormal, median
    # 400 ms, sigma 0.9), the page rightly shows "error", and Locust exits 1 (CI saw it).
    # This test is about browsers checking out; gateway timeouts have their scenarios.
    run = run_locust(
        tmp_path,
        *("-u", "3", "-r", "3", "--run-time", "35s", "--browser-users", "2"),
        *("--think-time-scale", "0.2", "--js-error-rate", "0"),
        *("--stack-gateway-latency-scale", "0.05"),
        timeout_s=180,
    )
    assert run.returncode == 0, run.output[-3000:]
    assert '"BrowserShopper": 2' in run.output and '"Shopper": 1' in run.output, run.output[-3000:]
    assert not wait_gone(run.stack_dir), "stack processes left behind"
    assert _scratch_dirs() <= before, "a browser shopper's scratch directory was left in /tmp"
    assert run.output.count("browser shopper: ") == 2  # each closed its browser and said so
    summary, ledger = run.summary(), run.ledger()
    assert summary["reconcile"]["ok"], summary["reconcile"]
    browser_rows = [row for row in ledger if row["key"].startswith("web-")]
    assert len(browser_rows) >= 2, ledger
    assert all(row["outcome"] in ("succeeded", "declined") for row in browser_rows), browser_rows
    assert all(row["trace_id"] and row["payment_id"] for row in browser_rows), browser_rows
    with stored_collector(run.stack_dir) as url:
        client = CollectorClient(url)
        clicks = [
            c
            for c in client.find_rum(RumQuery(kind="event", name="click_payment_button"))
            # the page's (the simulated shoppers' say https://shop.example/)
            if (c.page_url or "").startswith("http://127.0.0.1:")
        ]
        traced = {c.trace_id for c in clicks}
        assert {row["trace_id"] for row in browser_rows} <= traced
        assert all(c.attributes["cart_value"] == "100.00" for c in clicks)
        row = browser_rows[0]
        spans = client.get_trace(row["trace_id"])
        names = {(s.service, s.name) for s in spans}
        assert ("shop-frontend", "checkout") in names, names
        assert ("payment-api", "INSERT payments") in names, names


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--browser-users", "99"), "error: --browser-users: must be between 0 and 16"),
        (("--browser-users", "1"), "error: --browser-users: no checkout page to open"),
        (("--webapp-url", "ftp://x"), "error: --webapp-url"),
    ],
)
def test_bad_browser_options_are_one_line_errors(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    run = run_locust(
        tmp_path, "--host", "http://127.0.0.1:9", *args, "--run-time", "1s", timeout_s=60
    )
    assert run.returncode == 2, run.output
    assert message in run.output
    assert "Traceback" not in run.output


def _chromium_children(parent: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("chromium") and int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
            pids.append(int(entry.name))
    return pids


def _scratch_of(pid: int) -> list[Path]:
    """The browser's own TMPDIR and its shopper's scratch dir (holding the profile)."""
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    tmpdir = [Path(v.split(b"=", 1)[1].decode()) for v in env if v.startswith(b"TMPDIR=")]
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    profile = [
        Path(a.split(b"=", 1)[1].decode()) for a in argv if a.startswith(b"--user-data-dir=")
    ]
    return tmpdir + [p.parent for p in profile]


def test_a_killed_locust_takes_its_browsers_with_it(tmp_path: Path) -> None:
    chromium()
    if not built(DIST_DIR):
        cannot_run(f"the checkout page is not built; {BUILD_HINT}")
    proc, stack_dir, _ = start_locust(
        tmp_path, *("-u", "1", "-r", "1", "--run-time", "60s", "--browser-users", "1")
    )
    browsers: list[int] = []
    scratch: list[Path] = []
    try:
        deadline = time.monotonic() + 60
        while not browsers and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            browsers = _chromium_children(proc.pid)
        assert browsers, "no browser started"
        scratch = [d for pid in browsers for d in _scratch_of(pid)]
        assert len(scratch) == 2 and all(d.is_dir() for d in scratch), scratch
        os.kill(proc.pid, signal.SIGKILL)  # Locust only: the browser has its own session
        proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(Path(f"/proc/{pid}").exists() for pid in browsers):
            assert time.monotonic() < deadline, "the browser outlived its Locust"
            time.sleep(0.2)
        assert not wait_gone(stack_dir), "stack processes left behind"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        for pid in browsers:  # what this test started, if a check above failed
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        for directory in scratch:  # a SIGKILLed Locust cannot remove them: this test does
            shutil.rmtree(directory, ignore_errors=True)
