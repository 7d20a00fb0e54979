"""Every ASGI service tunes Python's garbage collector; a bad setting is refused by name."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import pytest

from paychaos.stack.service import (
    DEFAULT_GC_GEN0_THRESHOLD,
    GC_ENV,
    gc_gen0_threshold,
    tune_gc,
)


def test_the_threshold_comes_from_the_environment() -> None:
    assert gc_gen0_threshold({}) == DEFAULT_GC_GEN0_THRESHOLD
    assert gc_gen0_threshold({GC_ENV: " 5000 "}) == 5000
    assert gc_gen0_threshold({GC_ENV: "python"}) is None


@pytest.mark.parametrize("value", ["0", "99", "-1", "fast", "1e4", "20000.5", "²"])
def test_a_bad_threshold_names_the_variable(value: str) -> None:
    with pytest.raises(SystemExit, match=f"{GC_ENV}: expected a whole number >= 100"):
        gc_gen0_threshold({GC_ENV: value})


def test_tuning_freezes_what_exists_and_sets_the_youngest_threshold() -> None:
    before = gc.get_threshold()
    try:
        tune_gc(12_345)
        assert gc.get_threshold() == (12_345, before[1], before[2])
        assert gc.get_freeze_count() > 1000  # the modules, classes and functions loaded so far
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_service_started_with_a_bad_threshold_exits_naming_it() -> None:
    """The gateway (any ASGI service): one line on stderr, exit 1, no traceback."""
    env = {**os.environ, GC_ENV: "lots"}
    proc = subprocess.run(
        [sys.executable, "-m", "paychaos.stack.gateway", "--port", "9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert f"{GC_ENV}: expected a whole number >= 100 or 'python', got 'lots'" in proc.stderr
    assert "Traceback" not in proc.stderr
