"""The layer checker (import-linter, run by `make test`) fails on an import that points up."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layers_hold_today_and_an_upward_import_breaks_the_build(tmp_path: Path) -> None:
    if not LINT.exists():
        pytest.fail(f"lint-imports is not installed next to {sys.executable} (make setup)")
    copy = tmp_path / "paychaos"
    shutil.copytree(
        REPO / "paychaos", copy, symlinks=False, ignore=shutil.ignore_patterns("__pycache__")
    )
    kept = _lint(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    # the contracts reaching up into the engine: exactly what the layers forbid
    domain = copy / "contracts" / "domain.py"
    domain.write_text(domain.read_text() + "\nimport paychaos.runner.runner  # noqa\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0
    assert "paychaos.contracts.domain -> paychaos.runner.runner" in broken.stdout
