"""Without a built page, ``paychaos up --webapp`` and the page's server say what to run,
before anything starts (no stack, no state directory)."""

from __future__ import annotations

from pathlib import Path

import pytest

import paychaos.stack.webapp as webapp
from paychaos.cli import main
from paychaos.contracts.errors import InvalidInput
from paychaos.stack.webapp.__main__ import main as serve_page
from paychaos.stack.webapp.server import PageSettings


def test_up_webapp_without_a_built_page_names_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(webapp, "DIST_DIR", tmp_path / "dist")
    state = tmp_path / "state"
    code = main(["--state-dir", str(state), "up", "--webapp", "--port-base", "1"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "--webapp: the checkout page is not built; build it with: make webapp" in err
    assert not state.exists()


def test_the_page_server_refuses_an_unbuilt_dist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = serve_page(
        [
            "--port",
            "1",
            "--api-url",
            "http://127.0.0.1:2",
            "--collector-url",
            "http://127.0.0.1:3",
            "--dist",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "no built page in" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [
        ("api_url", "127.0.0.1:8000", "--api-url"),
        ("collector_url", "ftp://x", "--collector-url"),
        ("checkout_path", "api/checkout", "--checkout-path"),
    ],
)
def test_page_settings_name_the_bad_flag(field: str, value: str, flag: str) -> None:
    good = {"api_url": "http://127.0.0.1:1", "collector_url": "http://127.0.0.1:2"}
    with pytest.raises(InvalidInput, match=flag):
        PageSettings(dist=Path("."), **{**good, field: value})
