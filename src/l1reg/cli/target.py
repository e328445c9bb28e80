"""The target column: which task it is (regression or classification), and its values encoded.

Under ``--task auto`` a target of 2 distinct values (numbers, text or booleans) is a
classification and any other numeric target a regression, with a hint when it has at most
``FEW_INTEGERS`` distinct integer values (class labels, often); a text target of more values needs
``--task classification``. A classification's classes are the sorted distinct values, coded
0..K-1, and each must have at least one row per cross-validation fold (the folds are stratified).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from l1reg.cli.errors import CommandError
from l1reg.cli.table import first_non_number, first_row, is_numeric
from l1reg.cli.wording import plural

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FEW_INTEGERS", "Target", "encode_target", "plain"]

# A numeric target of at most this many distinct integers gets the hint that it may be classes.
FEW_INTEGERS = 10


class Target(NamedTuple):
    """The target ready for an estimator, and how its task was chosen."""

    y: np.ndarray  # float values (regression) or class codes 0..K-1 (classification)
    classes: list[Any] | None  # the class of each code, as JSON can hold it; None for a regression
    task: str  # "regression" or "classification"
    reason: str  # how the task was chosen, for the report
    notes: list[str]  # hints about the choice, for the report


def encode_target(series: pd.Series, target: str, task: str, cv: int) -> Target:
    """The target column ``series`` (named ``target``) checked and encoded for ``task``."""
    is_missing = series.isna().to_numpy()
    if is_missing.any():
        count = int(is_missing.sum())
        raise CommandError(
            f"target column {target!r} has {plural(count, 'missing value')}, "
            f"{'the first ' if count > 1 else ''}in data row {first_row(is_missing)}; "
            "--impute fills features only: remove those rows"
        )
    numeric = is_numeric(series)
    n_distinct = int(series.nunique())
    if n_distinct < 2:
        raise CommandError(
            f"target column {target!r} has the same value ({plain(series.iloc[0])!r}) in every "
            "row; there is nothing to predict"
        )
    if not numeric and (task == "regression" or (task == "auto" and n_distinct > 2)):
        row, value = first_non_number(series) or (1, str(series.iloc[0]))
        hint = (
            "" if task == "regression" else "; pass --task classification if its values are classes"
        )
        raise CommandError(
            f"target column {target!r} is not numeric ({value!r} in data row {row}){hint}"
        )
    notes = []
    if task == "auto":
        if n_distinct == 2:
            task, reason = "classification", "auto: the target has 2 distinct values"
        else:
            task = "regression"
            reason = f"auto: numeric target with {n_distinct} distinct values"
            values = series.to_numpy(dtype=np.float64)
            if n_distinct <= FEW_INTEGERS and np.all(values == np.round(values)):
                notes.append(
                    f"the target has only {n_distinct} distinct integer values; if they are "
                    "classes, not amounts, pass --task classification"
                )
    else:
        reason = "--task " + task
    if task == "regression":
        y = series.astype("float64").to_numpy()
        if not np.isfinite(y).all():
            bad = ~np.isfinite(y)
            raise CommandError(
                f"target column {target!r} has an infinite value in data row {first_row(bad)}"
            )
        return Target(y, None, task, reason, notes)
    classes, y = np.unique(series.to_numpy(), return_inverse=True)
    counts = np.bincount(y, minlength=len(classes))
    if counts.min() < cv:
        smallest = int(np.argmin(counts))
        raise CommandError(
            f"class {classes[smallest]!r} of target column {target!r} has {counts[smallest]} "
            f"row{'s' if counts[smallest] > 1 else ''}; stratified {cv}-fold cross-validation "
            f"needs at least {cv} rows of every class (lower --cv; or is this target really "
            f"{len(classes)} classes?)"
        )
    if len(classes) > 2:
        notes.append(
            f"{len(classes)} classes, fitted one-vs-rest: one L1 logistic regression per class "
            "against the others, all at the same alpha; probabilities are their sigmoids "
            "normalised to sum to 1"
        )
    return Target(y.astype(np.int64), [plain(c) for c in classes], task, reason, notes)


def plain(value: Any) -> Any:
    """A NumPy scalar as the Python value JSON can hold."""
    return value.item() if isinstance(value, np.generic) else value
