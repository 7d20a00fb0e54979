"""The target model: validated like a scenario, secrets only by reference, capabilities."""

from __future__ import annotations

from pathlib import Path

import pytest

from paychaos.cli import main
from paychaos.contracts.errors import InvalidTarget
from paychaos.contracts.target import SecretRef, missing
from paychaos.targets.load import load_target, parse_target

GOOD = """\
name: staging
checkout:
  url: http://127.0.0.1:3000
signals:
  prometheus: http://127.0.0.1:9090
  traces: {kind: tempo, url: http://127.0.0.1:3200}
actuators:
  toxiproxy:
    url: http://127.0.0.1:8474
    proxies: {database: shop-db}
  gateway_admin:
    url: http://127.0.0.1:8101
    token: {env: STAGING_GATEWAY_TOKEN}
  processes:
    pid_files: {api: run/api.pid}
"""


def test_a_good_target_offers_what_it_configures(tmp_path: Path) -> None:
    path = tmp_path / "staging.yaml"
    path.write_text(GOOD)
    target = load_target(path)
    offers = target.capabilities()
    assert {"checkout", "metrics", "alerts", "traces", "proxy.database"} <= set(offers)
    assert {"gateway.behaviours", "process.api"} <= set(offers)
    assert "proxy.gateway" not in offers and "logs" not in offers and "rum" not in offers
    # relative paths are the file's directory's
    assert target.actuators.processes is not None
    assert target.actuators.processes.pid_files["api"] == tmp_path / "run" / "api.pid"
    assert missing(offers, ["process.gateway|container.gateway", "traces"]) == [
        "process.gateway|container.gateway"
    ]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (("url: http://127.0.0.1:3000", "url: ftp://x"), "staging.yaml:3: checkout.url"),
        (("name: staging", "name: Bad Name"), "staging.yaml:1: name"),
        (("  prometheus:", "  promethus:"), "staging.yaml:5: signals.promethus: unknown field"),
        (
            ("{database: shop-db}", "{cache: shop-db}"),
            "staging.yaml:10: actuators.toxiproxy.proxies",
        ),
        (("kind: tempo", "kind: loki"), "staging.yaml:4: signals"),
        (
            ("token: {env: STAGING_GATEWAY_TOKEN}", "token: s3cret-inline"),
            "staging.yaml:13: actuators.gateway_admin.token",
        ),
    ],
)
def test_a_bad_target_names_file_line_and_field(
    tmp_path: Path, change: tuple[str, str], where: str
) -> None:
    path = tmp_path / "staging.yaml"
    path.write_text(GOOD.replace(*change))
    assert change[0] in GOOD
    with pytest.raises(InvalidTarget) as exc:
        load_target(path)
    assert str(exc.value).startswith(str(tmp_path / where)), str(exc.value)
    assert "pydantic" not in str(exc.value)


def test_a_host_that_is_not_loopback_needs_the_allow_list(tmp_path: Path) -> None:
    remote = GOOD.replace("http://127.0.0.1:9090", "http://prom.staging.internal:9090")
    with pytest.raises(InvalidTarget, match=r"x.yaml:5: signals.prometheus: prom.staging.internal"):
        parse_target(remote, "x.yaml")
    allowed = parse_target(remote + "allow_hosts: [prom.staging.internal]\n", "x.yaml")
    assert allowed.signals.prometheus == "http://prom.staging.internal:9090"


def test_a_secret_is_resolved_when_used_and_never_shown(tmp_path: Path) -> None:
    ref = SecretRef(env="PAYCHAOS_TEST_TOKEN")
    with pytest.raises(InvalidTarget, match="PAYCHAOS_TEST_TOKEN is not set"):
        ref.resolve({})
    assert ref.resolve({"PAYCHAOS_TEST_TOKEN": "abc"}) == "abc"
    assert "abc" not in repr(ref) and ref.describe() == "$PAYCHAOS_TEST_TOKEN"
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    assert SecretRef(file=secret).resolve({}) == "from-file"
    with pytest.raises(ValueError):
        SecretRef(env="A", file=secret)


def test_cli_exits_2_on_a_bad_target_and_shows_secrets_as_references(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("url: http://127.0.0.1:3000", "url: 3000"))
    assert main(["target", "show", "--target", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3: checkout.url" in err and "Traceback" not in err
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert main(["target", "show", "--target", str(good)]) == 0
    shown = capsys.readouterr().out
    assert '"env": "STAGING_GATEWAY_TOKEN"' in shown


def test_an_unknown_target_name_says_what_was_tried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["status", "--target", "nowhere"]) == 2
    err = capsys.readouterr().err
    assert "not a built-in target (embedded, docker)" in err and "targets/nowhere.yaml" in err
