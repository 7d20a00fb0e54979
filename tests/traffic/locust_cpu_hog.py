"""A locustfile for the signal tests: the project's plugin with one user class that
holds the CPU for 0.2 s at a time without yielding, so a signal almost always comes while
a user greenlet runs, never the main one (where Locust catches KeyboardInterrupt). Its
host is a closed port: it sends nothing. Its first task creates ``hog-running`` in the
working directory."""

from __future__ import annotations

import time
from pathlib import Path

from locust import User, constant, events, task

from paychaos.locust.plugin import install


class CpuHog(User):
    host = "http://127.0.0.1:9"
    wait_time = constant(0)

    @task
    def hold_the_cpu(self) -> None:
        Path("hog-running").touch()
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            pass


install(events)
