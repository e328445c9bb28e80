"""The demo data of ``l1reg demo``: two small data sets that ship inside scikit-learn (no download).

- ``diabetes``: Efron, Hastie, Johnstone and Tibshirani's least-angle regression data (2004):
  442 patients, 10 baseline measurements, and ``progression``, a measure of disease progression one
  year later. The values are the original units (scikit-learn's ``scaled=False``), and the six blood
  serum columns that scikit-learn calls s1..s6 carry the names of its description.
- ``breast_cancer``: the Wisconsin diagnostic breast cancer data: 569 tumours, 30 measurements of
  their cell nuclei, and ``diagnosis``, ``"malignant"`` or ``"benign"``.

Each loader returns a pandas DataFrame with named columns, the target last::

    >>> from l1reg.datasets import load_diabetes
    >>> load_diabetes().shape
    (442, 11)

Importing this module imports neither pandas nor scikit-learn's data sets; calling a loader does.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DATASETS", "DemoDataset", "load_breast_cancer", "load_diabetes", "write_csv"]

# scikit-learn's description of the diabetes data names its six blood serum columns.
_DIABETES_SERUM = {
    "s1": "tc",  # total serum cholesterol
    "s2": "ldl",  # low-density lipoproteins
    "s3": "hdl",  # high-density lipoproteins
    "s4": "tch",  # total cholesterol / HDL
    "s5": "ltg",  # log of serum triglycerides
    "s6": "glu",  # blood sugar level
}


def load_diabetes() -> pd.DataFrame:
    """The diabetes data: 442 rows, 10 features in their original units, target ``progression``."""
    from sklearn.datasets import load_diabetes as sklearn_diabetes

    frame = sklearn_diabetes(as_frame=True, scaled=False).frame
    return frame.rename(columns={**_DIABETES_SERUM, "target": "progression"})


def load_breast_cancer() -> pd.DataFrame:
    """The breast cancer data: 569 rows, 30 numeric features, target ``diagnosis`` (text labels)."""
    from sklearn.datasets import load_breast_cancer as sklearn_breast_cancer

    bunch = sklearn_breast_cancer(as_frame=True)
    frame = bunch.data.copy()
    frame["diagnosis"] = bunch.target_names[bunch.target.to_numpy()]
    return frame


@dataclass(frozen=True)
class DemoDataset:
    """A bundled data set: how to load it, which column to predict, and the task."""

    name: str
    load: Callable[[], pd.DataFrame]
    target: str
    task: str
    description: str


DATASETS: dict[str, DemoDataset] = {
    "diabetes": DemoDataset(
        "diabetes",
        load_diabetes,
        "progression",
        "regression",
        "diabetes progression after one year (Efron et al. 2004), 442 patients",
    ),
    "breast_cancer": DemoDataset(
        "breast_cancer",
        load_breast_cancer,
        "diagnosis",
        "classification",
        "breast tumour diagnosis from cell nuclei (Wisconsin), 569 tumours",
    ),
}


def write_csv(name: str, path: str | os.PathLike[str]) -> Path:
    """Write bundled data set ``name`` to the CSV file ``path`` and return the path.

    The file is written under a temporary name in the same folder and renamed into place, so
    ``path`` is either absent or complete. Raises ``KeyError`` for an unknown name.
    """
    if name not in DATASETS:
        raise KeyError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    path = Path(path)
    text = DATASETS[name].load().to_csv(index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it private; give it the usual mode
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
