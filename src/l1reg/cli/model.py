"""The saved model, ``model.json``: what ``l1reg fit`` found, as plain JSON, and its reuse.

``model.json`` holds the whole pipeline from a table to a prediction, and nothing executable (no
pickle): the columns used and their encodings (text levels, the values ``--impute`` fills in), the
standardization of each model feature, the coefficients and intercepts in the original units of
the columns (those applied to the encoded, unstandardized features), the classes, alpha and the
l1reg version. :func:`load_model` reads it back as a :class:`TableModel`, whose ``predict`` encodes
a new table with the same encoder as the fit (:func:`l1reg.cli.design.encode`) and predicts with
the estimator's own ``predict``/``predict_proba`` (a ``Lasso`` or ``L1LogisticRegression`` given
the saved coefficients), so the command and Python agree with the fitted estimator.

    model = l1reg.load_model("l1reg-out/hitters/model.json")
    model.predict(pandas.read_csv("new.csv"))
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from l1reg import __version__
from l1reg._validation import Checked, declare_params, invalid_parameter
from l1reg.cli.design import ColumnEncoding, Design, encode
from l1reg.cli.errors import CommandError
from l1reg.cli.fitting import FitResult, set_fitted

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMAT", "TableModel", "load_model", "model_dict"]

FORMAT = "l1reg-model"
FORMAT_VERSION = 1


def original_units(design: Design, result: FitResult) -> tuple[np.ndarray, np.ndarray]:
    """(coef, intercept) applied to the encoded features before standardization."""
    coef = result.coef / design.scale
    intercept = result.intercept - result.coef @ (design.mean / design.scale)
    return coef, intercept


def model_dict(design: Design, result: FitResult, *, run: str) -> dict[str, Any]:
    """The content of ``model.json`` for a fit."""
    coef, intercept = original_units(design, result)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "l1reg_version": __version__,
        "run": run,
        "data": design.source,
        "target": design.target,
        "task": design.task,
        "estimator": "Lasso" if design.task == "regression" else "L1LogisticRegression",
        "multiclass": "one-vs-rest" if design.classes and len(design.classes) > 2 else None,
        "classes": design.classes,
        "alpha": result.alpha,
        "alpha_source": result.alpha_source,
        "columns": design.encodings_dict(),
        "features": [
            {"name": name, "column": column, "level": level, "mean": float(m), "sd": float(s)}
            for name, column, level, m, s in zip(
                design.feature_names, design.columns, design.levels, design.mean, design.scale
            )
        ],
        "coef": coef.tolist(),
        "intercept": intercept.tolist(),
    }


class TableModel:
    """A model saved by ``l1reg fit``, applied to tables (pandas DataFrames) with its columns.

    Attributes: ``target``, ``task``, ``classes_`` (None for a regression), ``alpha_``,
    ``feature_names_in_`` (the table columns it reads), ``coef_``/``intercept_`` (original units,
    one row per output), ``estimator_`` (the ``Lasso`` or ``L1LogisticRegression`` that predicts
    from the encoded features).
    """

    def __init__(self, spec: dict[str, Any], *, source: str = "model.json") -> None:
        self.spec = spec
        self.source = source
        self.target = spec["target"]
        self.task = spec["task"]
        self.alpha_ = float(spec["alpha"])
        self.encodings = [ColumnEncoding(**column) for column in spec["columns"]]
        self.feature_names_in_ = np.array([e.name for e in self.encodings], dtype=object)
        self.coef_ = np.asarray(spec["coef"], dtype=np.float64)
        self.intercept_ = np.asarray(spec["intercept"], dtype=np.float64)
        from l1reg.linear_model import L1LogisticRegression, Lasso

        if self.task == "regression":
            self.classes_ = None
            estimator = Lasso(alpha=self.alpha_)
        else:
            self.classes_ = np.asarray(spec["classes"])
            estimator = L1LogisticRegression(alpha=self.alpha_)
        self.estimator_ = set_fitted(estimator, self.coef_, self.intercept_, self.classes_)

    def features(self, table: pd.DataFrame, *, source: str = "the table") -> np.ndarray:
        """The encoded model features of ``table`` (a CommandError names what does not fit)."""
        return encode(
            table.set_axis([str(c) for c in table.columns], axis=1), self.encodings, source=source
        )

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        """The predicted value (regression) or class of each row of ``table``."""
        return self.estimator_.predict(self.features(table))

    def predict_proba(self, table: pd.DataFrame) -> np.ndarray:
        """Class probabilities, one column per class of ``classes_`` (classification only)."""
        if self.classes_ is None:
            raise AttributeError("predict_proba: this model is a regression")
        return self.estimator_.predict_proba(self.features(table))

    def __repr__(self) -> str:
        return (
            f"TableModel(target={self.target!r}, task={self.task!r}, alpha={self.alpha_:.5g}, "
            f"columns={len(self.encodings)})"
        )


def _bad_paths(valid: Any) -> list:
    folder = Path(valid).parent
    return [123, None, str(folder / "absent.json"), str(folder / "summary.json")]


_PATH = "the path (str or os.PathLike) of a model.json written by l1reg fit, or of its folder"


@declare_params(path=[Checked(_PATH, _bad_paths)])
def load_model(path: str | os.PathLike) -> TableModel:
    """The model ``l1reg fit`` wrote to ``path`` (its ``model.json``, or the folder), ready to
    predict from a pandas DataFrame with the columns it was fitted on."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(invalid_parameter("path", "load_model", _PATH, path))
    try:
        return read_model(path)
    except CommandError as error:
        raise ValueError(
            invalid_parameter("path", "load_model", _PATH, path) + f" {error}."
        ) from None


def read_model(path: str | os.PathLike) -> TableModel:
    """:func:`load_model` for the command: a problem is a CommandError naming the file."""
    text = str(path)
    file = Path(path)
    if file.is_dir():
        file = file / "model.json"
    try:
        spec = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CommandError(f"cannot read model file {text!r}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CommandError(f"cannot read model file {text!r}: {error}") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise CommandError(
            f"{text!r} is not a model written by l1reg fit (its format is not {FORMAT!r})"
        )
    if spec.get("format_version", 0) > FORMAT_VERSION:
        raise CommandError(
            f"{text!r} was written by l1reg {spec.get('l1reg_version')} in a newer model format "
            f"({spec['format_version']}); this l1reg ({__version__}) reads format {FORMAT_VERSION}"
        )
    return TableModel(spec, source=text)


def predictions_frame(model: TableModel, table: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """``l1reg predict``'s output: the prediction of each row, and each class's probability."""
    import pandas as pd

    X = model.features(table, source=source)
    name = f"predicted_{model.target}"
    frame = pd.DataFrame({name: model.estimator_.predict(X)})
    if model.classes_ is not None:
        probabilities = model.estimator_.predict_proba(X)
        for k, label in enumerate(model.classes_):
            frame[f"probability[{label}]"] = probabilities[:, k]
    return frame
