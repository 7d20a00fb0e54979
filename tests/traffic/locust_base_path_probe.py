"""Locust's web UI under a base path, with paychaos's Chaos and Payments tabs, in its own
process (Locust monkey-patches with gevent).

``python tests/traffic/locust_base_path_probe.py PORT /load`` serves the UI on
127.0.0.1:PORT under /load, prints ``ready`` once it listens, and stops when its
standard input closes (at most 120 s). No stack: the Chaos tab's target answers every
request with a StackError (:data:`NO_STACK`), so its API says so in JSON (a request that
misses the API gets Locust's 404 instead). The Payments tab shows one visa payment.
One idle user runs (sends nothing): Locust's UI shows its tabs only during a test.
"""

from __future__ import annotations

import sys
import time

import gevent
from gevent import select
from locust import User, constant, task
from locust.env import Environment

from paychaos.contracts.errors import StackError
from paychaos.locust.chaos_tab import install
from paychaos.traffic.business import BusinessStats, ClusterStats, install_web_ui

NO_STACK = "no stack in this probe"


def _no_stack() -> object:
    raise StackError(NO_STACK)


class Idle(User):
    """One user doing nothing: Locust's UI shows its tabs only while a test runs."""

    host = "http://127.0.0.1:9"
    wait_time = constant(1)

    @task
    def idle(self) -> None:
        pass


def main() -> int:
    port, base = int(sys.argv[1]), sys.argv[2]
    env = Environment(user_classes=[Idle])
    runner = env.create_local_runner()
    web_ui = env.create_web_ui("127.0.0.1", port, web_base_path=base)
    try:
        install(env, target=_no_stack)  # type: ignore[arg-type]
        business = BusinessStats()
        business.record("visa", "succeeded", 1999)
        install_web_ui(web_ui, ClusterStats(business))
        deadline = time.monotonic() + 10
        while not getattr(getattr(web_ui, "server", None), "started", False):
            if time.monotonic() > deadline:
                raise SystemExit("the web UI did not start")
            gevent.sleep(0.05)
        runner.start(1, spawn_rate=1)
        print("ready", flush=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            readable, _, _ = select.select([sys.stdin], [], [], 0.2)
            if readable and not sys.stdin.readline():
                break  # stdin closed: the test is done
    finally:
        web_ui.stop()
        runner.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
