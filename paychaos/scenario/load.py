"""Load and validate scenario files: a pure pass that touches no system.

Every problem becomes :class:`~paychaos.contracts.errors.InvalidScenario` whose message
names the file, the line and the field, one problem per line::

    scenarios/x.yaml:14: faults[0].params.latency_ms: must be > 0

Example::

    loaded = load_scenario(Path("scenarios/db-latency.yaml"))
    loaded.scenario.traffic.rate_per_s
    loaded.params[0]          # fault step 0, validated by the fault catalog
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from paychaos.contracts.errors import InvalidFault, InvalidScenario
from paychaos.contracts.scenario import Scenario, cross_check
from paychaos.scenario.marks import (
    FieldPath,
    data_path,
    format_problems,
    load_with_marks,
    message_of,
)

if TYPE_CHECKING:
    from paychaos.contracts.faults import FaultCatalog, PreparedFault

MAX_FILE_BYTES = 1_000_000
#: ``db-latency: parameter latency_ms (--latency-ms) `` before the chaos layer's message
_PARAM_PREFIX = re.compile(r"^[\w.-]+: (?:parameter \S+ \(--[\w-]+\) )?")


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario, where it came from, and its faults' typed parameters."""

    scenario: Scenario
    source: str
    params: tuple[PreparedFault, ...]


def param_of_error(message: str) -> str | None:
    from paychaos.contracts.faults import param_of_error as parse

    return parse(message)


def _default_catalog() -> FaultCatalog:
    from paychaos.runner.actors import run_catalog

    return run_catalog()


def parse_scenario(
    text: str, source: str = "<scenario>", catalog: FaultCatalog | None = None
) -> LoadedScenario:
    """Validate one scenario's YAML text; raise :class:`InvalidScenario` naming every problem."""
    data, lines = load_with_marks(text, source)
    if not isinstance(data, dict):
        raise InvalidScenario(f"{source}:1: (top level): a scenario must be a mapping")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            path = data_path(data, err["loc"])
            if str(err.get("type", "")).startswith("union_tag"):
                path = (*path, "type")
            problems.append((path, message_of(err)))
        raise InvalidScenario(format_problems(source, lines, problems)) from None
    problems = list(cross_check(scenario))
    catalog = catalog or _default_catalog()
    params: list[PreparedFault] = []
    for index, step in enumerate(scenario.faults):
        base: FieldPath = ("faults", index)
        try:
            params.append(catalog.validate(step.fault, step.params, step.duration_s))
        except ValidationError as exc:
            for err in exc.errors():
                loc = (*base, "params", *(e for e in err["loc"] if isinstance(e, str | int)))
                problems.append((loc, message_of(err)))
        except InvalidFault as exc:
            text = str(exc)
            name = param_of_error(text)
            where = (*base, "params", name) if name else (*base, "fault")
            problems.append((where, _PARAM_PREFIX.sub("", text) if name else text))
    if problems:
        raise InvalidScenario(format_problems(source, lines, problems))
    return LoadedScenario(scenario, source, tuple(params))


def load_scenario(path: Path, catalog: FaultCatalog | None = None) -> LoadedScenario:
    """Read and validate one scenario file."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InvalidScenario(f"{path}:1: (file): larger than {MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidScenario(f"{path}:1: (file): not UTF-8 text") from None
    except OSError as exc:
        raise InvalidScenario(f"{path}:1: (file): cannot read: {exc.strerror}") from None
    return parse_scenario(text, str(path), catalog)


def expand_paths(paths: Sequence[Path]) -> list[Path]:
    """Files as given, directories as their ``*.yaml``/``*.yml`` files (sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            if not found:
                raise InvalidScenario(f"{path}:1: (directory): no *.yaml scenario files")
            files.extend(found)
        else:
            files.append(path)
    return files


def load_all(paths: Sequence[Path], catalog: FaultCatalog | None = None) -> list[LoadedScenario]:
    """Validate every scenario before any runs; every file's problems in one error."""
    loaded: list[LoadedScenario] = []
    errors: list[str] = []
    names: dict[str, str] = {}
    for path in expand_paths(paths):
        try:
            item = load_scenario(path, catalog)
        except InvalidScenario as exc:
            errors.append(str(exc))
            continue
        name = item.scenario.name
        if name in names:
            errors.append(f"{path}:1: name: {name!r} is also the name of {names[name]}")
        names[name] = str(path)
        loaded.append(item)
    if errors:
        raise InvalidScenario("\n".join(errors))
    return loaded
