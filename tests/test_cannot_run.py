"""The rule for a requirement this machine lacks: skip with the reason, fail under CI."""

from __future__ import annotations

import pytest

from tests.cannot_run import cannot_run, skip_unless_ci


def test_a_missing_requirement_skips_outside_ci_and_fails_under_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no chromium"):
        cannot_run("no chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no chromium"):
        cannot_run("no chromium")


def test_the_collection_time_mark_skips_only_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    mark = skip_unless_ci("/sys/fs/cgroup is not writable")
    assert mark.args == (True,) and mark.kwargs["reason"] == "/sys/fs/cgroup is not writable"
    assert skip_unless_ci(None).args == (False,)
    monkeypatch.setenv("CI", "true")  # runs, and fails on the missing cgroup's own error
    assert skip_unless_ci("/sys/fs/cgroup is not writable").args == (False,)
