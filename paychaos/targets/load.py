"""Load a target file: YAML into a frozen :class:`~paychaos.contracts.target.Target`.

Validated like a scenario, before anything is touched: every problem is named
``file:line: field: message`` and raises :class:`~paychaos.contracts.errors.InvalidTarget`
(exit 2). A URL whose host is not loopback must be listed in ``allow_hosts``.

Example::

    target = load_target(Path("targets/staging.yaml"))
    target.capabilities()["proxy.database"]      # "toxiproxy proxy shop-db"
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from pydantic import ValidationError

from paychaos.contracts.errors import InvalidTarget
from paychaos.contracts.target import Target
from paychaos.scenario.marks import (
    FieldPath,
    data_path,
    format_problems,
    load_with_marks,
    message_of,
)
from paychaos.stack.service import is_loopback

MAX_FILE_BYTES = 256_000


def parse_target(text: str, source: str = "<target>", *, base_dir: Path | None = None) -> Target:
    """Validate one target's YAML text; :class:`InvalidTarget` naming every problem.

    Relative paths in the file (pid files, state file, secret files) are taken
    from ``base_dir`` (the file's directory).
    """
    data, lines = load_with_marks(text, source, InvalidTarget)
    if not isinstance(data, dict):
        raise InvalidTarget(f"{source}:1: (top level): a target must be a mapping")
    try:
        target = Target.model_validate(data)
    except ValidationError as exc:
        errors = [(data_path(data, err["loc"]), message_of(err)) for err in exc.errors()]
        raise InvalidTarget(format_problems(source, lines, errors)) from None
    problems: list[tuple[FieldPath, str]] = []
    allowed = set(target.allow_hosts)
    for role, url in target.urls().items():
        host = urllib.parse.urlsplit(url).hostname or ""
        if not is_loopback(host) and host not in allowed:
            where = _url_path(role)
            problems.append(
                (
                    where,
                    f"{host} is not loopback; list it in allow_hosts to send load or faults there",
                )
            )
    if problems:
        raise InvalidTarget(format_problems(source, lines, problems))
    return _rebase(target, base_dir) if base_dir is not None else target


def _url_path(role: str) -> FieldPath:
    return {
        "checkout": ("checkout", "url"),
        "prometheus": ("signals", "prometheus"),
        "alertmanager": ("signals", "alertmanager"),
        "traces": ("signals", "traces", "url"),
        "logs": ("signals", "logs", "url"),
        "rum": ("signals", "rum", "url"),
        "notifications": ("signals", "notifications", "url"),
        "toxiproxy": ("actuators", "toxiproxy", "url"),
        "gateway_admin": ("actuators", "gateway_admin", "url"),
        "api_admin": ("actuators", "api_admin", "url"),
    }[role]


def _rebase(target: Target, base: Path) -> Target:
    """Relative file paths of ``target`` taken from ``base``."""

    def fix(path: Path | None) -> Path | None:
        return None if path is None or path.is_absolute() else base / path

    act = target.actuators
    updates: dict[str, object] = {}
    if act.processes is not None:
        procs = act.processes
        updates["processes"] = procs.model_copy(
            update={
                "state_file": fix(procs.state_file) or procs.state_file,
                "pid_files": {k: fix(v) or v for k, v in procs.pid_files.items()},
            }
        )
    for name in ("gateway_admin", "api_admin"):
        api = getattr(act, name)
        if api is not None and api.token is not None and api.token.file is not None:
            token = api.token.model_copy(update={"file": fix(api.token.file) or api.token.file})
            updates[name] = api.model_copy(update={"token": token})
    if not updates:
        return target
    return target.model_copy(update={"actuators": act.model_copy(update=updates)})


def load_target(path: Path) -> Target:
    """Read and validate one target file."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidTarget(f"{path}:1: (file): larger than {MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidTarget(f"{path}:1: (file): not UTF-8 text") from None
    except OSError as exc:
        raise InvalidTarget(f"{path}:1: (file): cannot read: {exc.strerror}") from None
    return parse_target(text, str(path), base_dir=path.resolve().parent)


__all__ = ["load_target", "parse_target"]
