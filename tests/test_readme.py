"""The README stands alone: nothing it points at lies outside the repository."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_the_readme_points_at_nothing_outside_the_repository() -> None:
    leaving = re.findall(r"(?<![\w.])\.\./[^\s`)]*", README)
    assert leaving == [], leaving
    for link in re.findall(r"\]\(([^)]+)\)", README):  # markdown links to files
        if not link.startswith(("http://", "https://", "#")):
            assert (REPO / link).resolve().is_relative_to(REPO), link
            assert (REPO / link).exists(), link


def test_the_readme_describes_the_strategy_in_its_own_words() -> None:
    section = README.split("## The observability strategy it serves", 1)[1].split("\n## ", 1)[0]
    for words in (
        "MELT",
        "RED",
        "USE",
        "Alloy",
        "Faro",
        "shop_payments_total{method,status}",
        'bottomk(1, sum by (method) (increase(shop_payments_total{status="success"}[24h])))',
        "t3.medium",
        "OOM",
    ):
        assert words in section, words
    assert "seed" not in README.replace("--traffic-seed", "")


def test_the_test_command_lists_skip_reasons() -> None:
    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    [report] = [opt for opt in options["addopts"] if opt.startswith("-r")]
    assert "s" in report and "f" in report  # skips named, failures still listed
