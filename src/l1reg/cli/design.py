"""From the table to the design: the standardized feature matrix and the target, checked.

Numeric columns are used as they are; a text column is one-hot encoded, one model feature per level
(``"smoker=yes"``), which the report groups back under its column. With ``--impute`` a missing value
is the column's median (numeric) or most frequent value (text); without it, any missing feature
value is an error. Every model feature is then standardized (mean 0, standard deviation 1) so that
one alpha penalizes all features alike; a constant feature stays 0 and is reported as unused.
Every problem with the table is a :class:`CommandError` raised before any fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from l1reg.cli.errors import CommandError
from l1reg.cli.table import first_non_number, first_row, is_numeric
from l1reg.cli.target import encode_target
from l1reg.cli.wording import name_list, plural

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAX_LEVELS", "ROWS_PER_FOLD", "Design", "build_design"]

# A text column with more levels than this is almost surely an identifier or a mistyped number.
MAX_LEVELS = 100
# Cross-validation needs this many rows per fold at least.
ROWS_PER_FOLD = 2


@dataclass
class Design:
    """The standardized design matrix and target built from a table, and how they were built."""

    source: str  # the CSV path or the bundled data set's name, for messages
    target: str
    task: str  # "regression" or "classification"
    task_reason: str
    X: np.ndarray  # (n_rows, n_model_features), standardized
    y: np.ndarray  # float values (regression) or class codes 0..K-1 (classification)
    classes: list[Any] | None
    feature_names: list[str]  # model features: "bmi", or "smoker=yes" for a level
    columns: list[str]  # the table column of each model feature
    levels: list[str | None]  # the level of each model feature, None for a numeric column
    n_columns: int
    mean: np.ndarray
    scale: np.ndarray
    imputed: list[dict[str, Any]] = field(default_factory=list)
    constant: list[str] = field(default_factory=list)


def build_design(
    frame: pd.DataFrame,
    *,
    source: str,
    target: str,
    task: str = "auto",
    impute: bool = False,
    cv: int = 5,
) -> Design:
    """Check ``frame`` and turn it into a standardized design; every problem is a CommandError."""
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    if target not in columns:
        raise CommandError(
            f"target column {target!r} not found in {source}; its columns are {name_list(columns)}"
        )
    n_rows = len(frame)
    min_rows = ROWS_PER_FOLD * cv
    if n_rows < min_rows:
        rows = "row" if n_rows == 1 else "rows"
        raise CommandError(
            f"{source} has {n_rows} data {rows}; {cv}-fold cross-validation needs at least "
            f"{min_rows} ({ROWS_PER_FOLD} per fold; lower --cv for a smaller file)"
        )
    feature_columns = [c for c in columns if c != target]
    if not feature_columns:
        raise CommandError(f"{source} has no feature column besides the target {target!r}")

    encoded_target = encode_target(frame[target], target, task, cv)

    blocks: list[np.ndarray] = []
    owners: list[str] = []
    levels: list[str | None] = []
    imputed: list[dict[str, Any]] = []
    missing: list[tuple[str, int, int]] = []
    for column in feature_columns:
        series = frame[column]
        is_missing = series.isna().to_numpy()
        if is_missing.all():
            raise CommandError(f"column {column!r} of {source} has no values, only missing ones")
        if is_missing.any():
            missing.append((column, int(is_missing.sum()), first_row(is_missing)))
            if not impute:
                # Reported once every column has been checked: a worse problem of a later
                # column (an infinite value, a stray word) is named first.
                continue
        encode = _numeric_feature if is_numeric(series) else _text_feature
        block, column_levels, filled = encode(series, column, is_missing)
        blocks.append(block)
        owners.extend([column] * len(column_levels))
        levels.extend(column_levels)
        if filled is not None:
            imputed.append(filled)
    if missing and not impute:
        column, count, row = missing[0]
        others = f" (and {plural(len(missing) - 1, 'more column')})" if len(missing) > 1 else ""
        raise CommandError(
            f"column {column!r} has {plural(count, 'missing value')}, "
            f"{'the first ' if count > 1 else ''}in data row {row}{others}; pass --impute to "
            "fill them (median of a numeric column, most frequent value of a text column) or "
            "remove those rows"
        )

    names = [c if level is None else f"{c}={level}" for c, level in zip(owners, levels)]
    X, mean, scale, constant = _standardize(np.hstack(blocks), names)
    return Design(
        source=source,
        target=target,
        task=encoded_target.task,
        task_reason=encoded_target.reason,
        X=X,
        y=encoded_target.y,
        classes=encoded_target.classes,
        feature_names=names,
        columns=owners,
        levels=levels,
        n_columns=len(feature_columns),
        mean=mean,
        scale=scale,
        imputed=imputed,
        constant=constant,
    )


# Each encoder returns (the model features' values, shape (n_rows, k); the level of each of the k
# features, None for a numeric column; the record of what --impute filled in, or None).
_Encoded = tuple[np.ndarray, list[Any], dict[str, Any] | None]


def _imputed(column: str, is_missing: np.ndarray, value: Any, by: str) -> dict[str, Any]:
    return {"column": column, "missing": int(is_missing.sum()), "value": value, "by": by}


def _numeric_feature(series: pd.Series, column: str, is_missing: np.ndarray) -> _Encoded:
    """A numeric column as one model feature; missing values (if any) set to the median."""
    values = series.astype("float64").to_numpy()
    infinite = np.isinf(values)
    if infinite.any():
        raise CommandError(
            f"column {column!r} has an infinite value ({values[infinite][0]}) "
            f"in data row {first_row(infinite)}"
        )
    filled = None
    if is_missing.any():
        fill = float(np.median(values[~is_missing]))
        values = np.where(is_missing, fill, values)
        filled = _imputed(column, is_missing, fill, "median")
    return values[:, np.newaxis], [None], filled


def _text_feature(series: pd.Series, column: str, is_missing: np.ndarray) -> _Encoded:
    """A text column one-hot encoded, levels sorted; missing values set to the most frequent."""
    import pandas as pd

    present = series[~is_missing]
    bad = first_non_number(present)
    numbers_share = pd.to_numeric(present, errors="coerce").notna().mean()
    # Mostly numbers with a stray word ("n.a.", "?") is a typo to fix, not ten thousand levels.
    if bad is not None and numbers_share >= 0.9 and len(present) >= 10:
        row = int(np.flatnonzero(~is_missing)[bad[0] - 1]) + 1
        raise CommandError(
            f"column {column!r} holds numbers except for {bad[1]!r} in data row {row}; "
            "fix that value or leave the cell empty"
        )
    text = series.astype("object").where(~is_missing, None)
    text = text.map(lambda v: None if v is None else str(v))
    filled = None
    if is_missing.any():
        fill = str(text[~is_missing].mode().sort_values().iloc[0])
        text = text.where(~is_missing, fill)
        filled = _imputed(column, is_missing, fill, "most frequent")
    column_levels = sorted(set(text))
    if len(column_levels) > MAX_LEVELS:
        raise CommandError(
            f"column {column!r} is text with {len(column_levels)} distinct values, more than "
            f"the {MAX_LEVELS} levels l1reg fit one-hot encodes; drop it or group its values"
        )
    codes = pd.Categorical(text, categories=column_levels).codes
    one_hot = (codes[:, np.newaxis] == np.arange(len(column_levels))).astype(np.float64)
    return one_hot, column_levels, filled


def _standardize(
    X: np.ndarray, names: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(X standardized, the means, the standard deviations, the names of constant features)."""
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    constant_features = scale == 0
    scale[constant_features] = 1.0  # a constant feature stays at 0 after centering: coefficient 0
    constant = [names[j] for j in np.flatnonzero(constant_features)]
    return (X - mean) / scale, mean, scale, constant
