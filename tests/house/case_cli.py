"""Cases of what the command line's results give to Python: the saved model."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from house import Case

_FOLDER = Path(tempfile.mkdtemp(prefix="l1reg-house-"))


def _model_path() -> str:
    """A model.json as l1reg fit writes it, for a regression on one numeric column."""
    path = _FOLDER / "model.json"
    if not path.exists():
        spec = {
            "format": "l1reg-model",
            "format_version": 1,
            "l1reg_version": "0",
            "target": "y",
            "task": "regression",
            "classes": None,
            "alpha": 0.1,
            "columns": [{"name": "x", "kind": "numeric", "levels": None, "fill": None}],
            "coef": [[2.0]],
            "intercept": [1.0],
        }
        path.write_text(json.dumps(spec))
        (_FOLDER / "summary.json").write_text("{}")  # l1reg's, but not a model
    return str(path)


CASES = [
    Case(
        "l1reg.load_model",
        lambda: {"path": _model_path()},
        work=("l1reg.cli.model:TableModel",),
    ),
]
