"""How to run the real Prometheus and Alertmanager, and the promtool/amtool checks.

The supervisor runs the :class:`~paychaos.stack.process.ProcessSpec` returned here; the
helpers below wrap ``promtool``/``amtool`` so that a bad config or a failing
rule test becomes a :class:`StackError` carrying the tool's own message.

Example::

    spec = prometheus_spec(config_path, data_dir / "prometheus", port=9090)
    check_config(config_path)          # raises StackError with promtool's output
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from paychaos.contracts.errors import InvalidInput, MissingDependency, StackError
from paychaos.stack.process import ProcessSpec

#: Binary names to look for, in order, and the command that installs them
#: (Debian names the Alertmanager binary ``prometheus-alertmanager``).
BINARIES: Mapping[str, tuple[tuple[str, ...], str]] = {
    "prometheus": (("prometheus",), "apt-get install prometheus"),
    "promtool": (("promtool",), "apt-get install prometheus"),
    "alertmanager": (
        ("prometheus-alertmanager", "alertmanager"),
        "apt-get install prometheus-alertmanager",
    ),
    "amtool": (("amtool",), "apt-get install prometheus-alertmanager"),
}

#: Default TSDB retention: long enough for the seed's 24h ``bottomk`` query,
#: short enough that a forgotten data dir stays small.
DEFAULT_RETENTION = "1d"
TOOL_TIMEOUT_S = 60.0


def find_binary(name: str, environ: Mapping[str, str] | None = None) -> str:
    """Absolute path of ``prometheus``, ``promtool``, ``alertmanager`` or ``amtool``.

    Looks on ``environ["PATH"]`` (default: the process environment). Raises
    :class:`MissingDependency` with the install command when it is not there::

        >>> find_binary("alertmanager")   # doctest: +SKIP
        '/usr/bin/prometheus-alertmanager'
    """
    if name not in BINARIES:
        raise InvalidInput(f"unknown monitoring binary {name!r}; known: {', '.join(BINARIES)}")
    candidates, install = BINARIES[name]
    env = os.environ if environ is None else environ
    search_path = env.get("PATH", os.defpath)
    for candidate in candidates:
        found = shutil.which(candidate, path=search_path)
        if found:
            return found
    raise MissingDependency(f"{name} not found; install it with: {install}")


def prometheus_spec(
    config_path: Path,
    data_dir: Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    retention: str = DEFAULT_RETENTION,
    binary: str | None = None,
    environ: Mapping[str, str] | None = None,
    ready_timeout_s: float = 30.0,
) -> ProcessSpec:
    """The command line for Prometheus on ``host:port`` with its TSDB in ``data_dir``.

    ``--web.enable-lifecycle`` lets the supervisor reload (``POST /-/reload``)
    after rewriting the config. Health is ``/-/ready``.
    """
    exe = binary or find_binary("prometheus", environ)
    address = _listen_address(host, port)
    argv = (
        exe,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={data_dir}",
        f"--storage.tsdb.retention.time={retention}",
        f"--web.listen-address={address}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    )
    return ProcessSpec(
        name="prometheus",
        argv=argv,
        health_url=f"http://{address}/-/ready",
        port=port,
        metrics_path="/metrics",
        ready_timeout_s=ready_timeout_s,
        stop_timeout_s=10.0,
    )


def alertmanager_spec(
    config_path: Path,
    data_dir: Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    binary: str | None = None,
    environ: Mapping[str, str] | None = None,
    ready_timeout_s: float = 30.0,
) -> ProcessSpec:
    """The command line for Alertmanager on ``host:port``, clustering disabled.

    ``--cluster.listen-address=`` (empty) turns off the gossip cluster, which
    would otherwise bind 0.0.0.0:9094. Health is ``/-/ready``.
    """
    exe = binary or find_binary("alertmanager", environ)
    address = _listen_address(host, port)
    argv = (
        exe,
        f"--config.file={config_path}",
        f"--storage.path={data_dir}",
        f"--web.listen-address={address}",
        "--cluster.listen-address=",
        "--log.level=warn",
    )
    return ProcessSpec(
        name="alertmanager",
        argv=argv,
        health_url=f"http://{address}/-/ready",
        port=port,
        metrics_path="/metrics",
        ready_timeout_s=ready_timeout_s,
    )


def check_config(path: Path, environ: Mapping[str, str] | None = None) -> str:
    """Run ``promtool check config`` (which also checks the rule files); return its output.

    Raises :class:`StackError` with promtool's message when the config is rejected.
    """
    return _run_tool("promtool", ["check", "config", str(path)], environ)


def check_rules(paths: Sequence[Path], environ: Mapping[str, str] | None = None) -> str:
    """Run ``promtool check rules`` on rule files; :class:`StackError` on failure."""
    return _run_tool("promtool", ["check", "rules", *map(str, paths)], environ)


def run_rule_tests(paths: Sequence[Path], environ: Mapping[str, str] | None = None) -> str:
    """Run ``promtool test rules`` on unit-test files; :class:`StackError` on failure."""
    return _run_tool("promtool", ["test", "rules", *map(str, paths)], environ)


def check_alertmanager_config(path: Path, environ: Mapping[str, str] | None = None) -> str:
    """Run ``amtool check-config``; :class:`StackError` with amtool's message on failure."""
    return _run_tool("amtool", ["check-config", str(path)], environ)


def _listen_address(host: str, port: int) -> str:
    if isinstance(port, bool) or not 0 < port < 65536:
        raise InvalidInput(f"listen port must be in 1..65535, got {port!r}")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _run_tool(name: str, args: Sequence[str], environ: Mapping[str, str] | None) -> str:
    exe = find_binary(name, environ)
    command = [exe, *args]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT_S,
            check=False,
            env=None if environ is None else dict(environ),
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{' '.join(command)} did not finish in {TOOL_TIMEOUT_S:.0f} s") from exc
    except OSError as exc:
        raise StackError(f"{' '.join(command)} could not run: {exc}") from exc
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise StackError(f"{name} {' '.join(args)} failed (exit {done.returncode}):\n{output}")
    return output
