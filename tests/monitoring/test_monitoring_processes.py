"""Process specs, binary lookup and the promtool/amtool wrappers."""

from __future__ import annotations

from pathlib import Path

import pytest

from paychaos.contracts.errors import InvalidInput, MissingDependency, StackError
from paychaos.stack.monitoring.processes import (
    alertmanager_spec,
    check_alertmanager_config,
    check_config,
    find_binary,
    prometheus_spec,
)


def _fake_bin(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_find_binary_prefers_debian_alertmanager_name(tmp_path: Path) -> None:
    _fake_bin(tmp_path, "alertmanager")
    debian = _fake_bin(tmp_path, "prometheus-alertmanager")
    assert find_binary("alertmanager", {"PATH": str(tmp_path)}) == str(debian)


def test_find_binary_falls_back_to_upstream_name(tmp_path: Path) -> None:
    upstream = _fake_bin(tmp_path, "alertmanager")
    assert find_binary("alertmanager", {"PATH": str(tmp_path)}) == str(upstream)


@pytest.mark.parametrize(
    ("name", "install"),
    [
        ("prometheus", "apt-get install prometheus"),
        ("promtool", "apt-get install prometheus"),
        ("alertmanager", "apt-get install prometheus-alertmanager"),
        ("amtool", "apt-get install prometheus-alertmanager"),
    ],
)
def test_missing_binary_says_how_to_install(tmp_path: Path, name: str, install: str) -> None:
    with pytest.raises(MissingDependency) as info:
        find_binary(name, {"PATH": str(tmp_path)})
    assert str(info.value) == f"{name} not found; install it with: {install}"


def test_unknown_binary_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="grafana"):
        find_binary("grafana")


def test_prometheus_spec(tmp_path: Path) -> None:
    spec = prometheus_spec(tmp_path / "p.yml", tmp_path / "data", 9190, binary="/x/prometheus")
    assert spec.name == "prometheus"
    assert spec.argv[0] == "/x/prometheus"
    assert f"--config.file={tmp_path / 'p.yml'}" in spec.argv
    assert f"--storage.tsdb.path={tmp_path / 'data'}" in spec.argv
    assert "--web.listen-address=127.0.0.1:9190" in spec.argv
    assert "--web.enable-lifecycle" in spec.argv
    assert any(a.startswith("--storage.tsdb.retention.time=") for a in spec.argv)
    assert spec.health_url == "http://127.0.0.1:9190/-/ready"
    assert spec.port == 9190


def test_alertmanager_spec_disables_clustering(tmp_path: Path) -> None:
    spec = alertmanager_spec(tmp_path / "a.yml", tmp_path / "am", 9193, binary="/x/am")
    assert spec.argv[0] == "/x/am"
    assert "--cluster.listen-address=" in spec.argv
    assert f"--storage.path={tmp_path / 'am'}" in spec.argv
    assert "--web.listen-address=127.0.0.1:9193" in spec.argv
    assert spec.health_url == "http://127.0.0.1:9193/-/ready"


def test_spec_refuses_a_bad_port(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="port"):
        prometheus_spec(tmp_path / "p.yml", tmp_path, 0, binary="/x/prometheus")


@pytest.mark.usefixtures("promtool")
def test_check_config_raises_with_promtools_message(tmp_path: Path) -> None:
    bad = tmp_path / "prometheus.yml"
    bad.write_text("global:\n  scrape_interval: banana\n")
    with pytest.raises(StackError, match="banana"):
        check_config(bad)


@pytest.mark.usefixtures("amtool")
def test_check_alertmanager_config_raises_with_amtools_message(tmp_path: Path) -> None:
    bad = tmp_path / "alertmanager.yml"
    bad.write_text("route:\n  receiver: nobody\nreceivers: []\n")
    with pytest.raises(StackError, match="nobody"):
        check_alertmanager_config(bad)
