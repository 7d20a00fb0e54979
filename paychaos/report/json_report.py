"""The machine-readable report: one JSON document per run or suite."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from paychaos.report.matrix import build_matrix
from paychaos.report.model import RunRecord, suite_status


def suite_document(records: Sequence[RunRecord]) -> dict[str, object]:
    """``{"status": ..., "matrix": {...}, "runs": [...]}`` for a suite run (the matrix:
    :meth:`paychaos.report.matrix.Matrix.to_dict`)."""
    return {
        "status": suite_status(list(records)),
        "matrix": build_matrix(records).to_dict(),
        "runs": [r.to_dict() for r in records],
    }


def write_json(records: Sequence[RunRecord], path: Path) -> Path:
    """Write the suite document to ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(suite_document(records), indent=2, default=str))
    return path
