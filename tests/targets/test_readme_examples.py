"""Every example the README gives for targets runs as written (in a scratch directory).

The block after "run as written" in README.md is executed line by line with
bash, in a directory that links the checkout's ``.venv``, ``targets/`` and
``scenarios/`` (so ``.paychaos`` and ``reports`` are the test's own), and the
stack it starts is always stopped.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def readme_block(marker: str) -> list[str]:
    text = (REPO / "README.md").read_text()
    start = text.index(marker)
    block = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert block, f"no sh block after {marker!r} in README.md"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_target_examples_run_as_written(tmp_path: Path) -> None:
    lines = readme_block("run as written by `tests/targets/test_readme_examples.py`")
    assert lines[0].startswith(".venv/bin/paychaos up") and lines[-1].endswith("paychaos down")
    for name in (".venv", "targets", "scenarios"):
        (tmp_path / name).symlink_to(REPO / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYCHAOS_")}
    script = "set -e\n" + "\n".join(lines[:-1])
    try:
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=540,
        )
    finally:
        down = subprocess.run(
            ["bash", "-c", lines[-1]], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "decline-spike" in out and "passed" in out
    assert "expectation types" in out and "no permission" not in out
    assert down.returncode == 0, down.stdout + down.stderr
    assert (tmp_path / "reports").is_dir()
