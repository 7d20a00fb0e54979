"""Where paychaos lives on disk: the package and the tree that holds it.

The services of the embedded stack are started as ``python -m paychaos.stack.api``;
they need the directory that holds the ``paychaos`` package on ``PYTHONPATH``
when paychaos runs from a checkout rather than an installed wheel.

Example::

    env["PYTHONPATH"] = str(SOURCE_ROOT)
"""

from __future__ import annotations

from pathlib import Path

#: The ``paychaos`` package directory.
PACKAGE_DIR = Path(__file__).resolve().parent.parent
#: The directory that holds the package (the repository root in a checkout).
SOURCE_ROOT = PACKAGE_DIR.parent
#: Configuration of the real tools (Prometheus rules, compose file, Dockerfiles, dashboards).
STACK_DIR = PACKAGE_DIR / "stack"

__all__ = ["PACKAGE_DIR", "SOURCE_ROOT", "STACK_DIR"]
