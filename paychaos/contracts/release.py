"""The payment API's release: which version runs, and a deployment's record.

A deployment (the ``deploy`` fault, the seed's MELT *event* "v2.0 deployed")
writes the release file, then restarts the API gracefully through its
supervisor; the new process reads the file at start, reports
``shop_build_info{version}`` and logs the deployment. The record carries its
own TTL (``until_unix_s``): past it, the previous version is the one to run,
and the API restarts itself onto it, so a deployment ends by itself even if
the controller that made it is gone. The file lives in the stack's state
directory; the API finds it through :data:`RELEASE_FILE_ENV`.

Example::

    write_release(path, Release("v2.0", previous="v1.0", until_unix_s=time.time() + 60))
    read_release(path).effective(time.time())     # "v2.0", then "v1.0" after the TTL
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

#: Environment variable naming the release file the payment API reads at start.
RELEASE_FILE_ENV = "PAYCHAOS_RELEASE_FILE"
#: The release file's name in a stack's state directory.
RELEASE_FILE_NAME = "api-release.json"
#: The version the reference API runs when no deployment says otherwise.
DEFAULT_VERSION = "v1.0"
#: A version label: ``v2.0``, ``2.1.3``, ``v2.0-rc.1`` (letters, digits, ``.``, ``-``, ``+``).
VERSION_PATTERN = re.compile(r"^v?[0-9]+(\.[0-9]+){0,3}([-+][0-9A-Za-z.-]{1,24})?$")


def check_version(version: str) -> str:
    """``version`` when it is a valid version label; ``ValueError`` with a sentence otherwise."""
    if not VERSION_PATTERN.match(version):
        raise ValueError(
            f"version {version!r} is not a version label (like v2.0, 2.1.3 or v2.0-rc.1)"
        )
    return version


@dataclass(frozen=True)
class Release:
    """A deployed ``version`` that replaced ``previous`` until ``until_unix_s`` (its TTL)."""

    version: str
    previous: str = DEFAULT_VERSION
    until_unix_s: float | None = None

    def active(self, now_unix_s: float) -> bool:
        return self.until_unix_s is None or now_unix_s < self.until_unix_s

    def effective(self, now_unix_s: float) -> str:
        """The version that should run at ``now``: the deployed one, or after its TTL the previous."""
        return self.version if self.active(now_unix_s) else self.previous


def read_release(path: Path) -> Release | None:
    """The release recorded at ``path``; None when there is none (or it is unreadable)."""
    try:
        raw = json.loads(path.read_text())
        release = Release(
            version=check_version(str(raw["version"])),
            previous=check_version(str(raw.get("previous", DEFAULT_VERSION))),
            until_unix_s=None if raw.get("until_unix_s") is None else float(raw["until_unix_s"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return release


def write_release(path: Path, release: Release) -> None:
    """Record ``release`` at ``path`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(release)))
    os.replace(tmp, path)


__all__ = [
    "DEFAULT_VERSION",
    "RELEASE_FILE_ENV",
    "RELEASE_FILE_NAME",
    "VERSION_PATTERN",
    "Release",
    "check_version",
    "read_release",
    "write_release",
]
