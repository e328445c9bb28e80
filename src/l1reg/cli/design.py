"""From the table to the design: the standardized feature matrix and the target, checked.

The feature columns are those :mod:`l1reg.cli.columns` keeps. Each gets a :class:`ColumnEncoding`,
learned from the training table and saved in ``model.json``, so that ``l1reg predict`` encodes a new
table exactly as the fit did (:func:`encode`, the one encoder of both):

- a numeric column is one model feature, as it is;
- a text column of two levels is one 0/1 feature, 1 for its second level in sorted order
  (``"smoker=yes"``): two indicators would be collinear with the intercept, and split one effect
  between two coefficients;
- a text column of more levels is one indicator per level (``"group=a"``), which the report
  groups back under its column.

With ``--impute`` a missing value is the column's median (numeric) or most frequent value (text);
without it, any missing feature value is an error. Every model feature is then standardized
(mean 0, standard deviation 1) so that one alpha penalizes all features alike. Every problem with
the table is a :class:`CommandError` raised before any fit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from l1reg.cli.columns import screen_columns
from l1reg.cli.errors import CommandError
from l1reg.cli.table import first_non_number, first_row, is_numeric, mostly_numbers
from l1reg.cli.target import encode_target
from l1reg.cli.wording import name_list, plural

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAX_LEVELS", "ROWS_PER_FOLD", "ColumnEncoding", "Design", "build_design", "encode"]

# A text column with more levels than this is almost surely an identifier or a mistyped number.
MAX_LEVELS = 100
# Cross-validation needs this many rows per fold at least.
ROWS_PER_FOLD = 2


@dataclass
class ColumnEncoding:
    """How one table column becomes model features."""

    name: str
    kind: str  # "numeric" or "text"
    levels: list[str] | None = None  # a text column's levels, sorted
    fill: float | str | None = None  # the value of a missing cell (--impute), else None

    @property
    def feature_levels(self) -> list[str | None]:
        """The level of each of its model features: None for a number; one level for two."""
        if self.levels is None:
            return [None]
        return self.levels[1:] if len(self.levels) == 2 else list(self.levels)

    @property
    def feature_names(self) -> list[str]:
        return [self.name if lv is None else f"{self.name}={lv}" for lv in self.feature_levels]


@dataclass
class Design:
    """The standardized design matrix and target built from a table, and how they were built."""

    source: str  # the data file or the bundled data set's name, for messages
    target: str
    task: str  # "regression" or "classification"
    task_reason: str
    X: np.ndarray  # (n_rows, n_model_features), standardized
    y: np.ndarray  # float values (regression) or class codes 0..K-1 (classification)
    classes: list[Any] | None
    encodings: list[ColumnEncoding]
    feature_names: list[str]  # model features: "bmi", or "smoker=yes" for a level
    columns: list[str]  # the table column of each model feature
    levels: list[str | None]  # the level of each model feature, None for a numeric column
    mean: np.ndarray
    scale: np.ndarray
    left_out: dict[str, Any] = field(default_factory=dict)  # Screening.to_dict()
    imputed: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # hints about the task

    @property
    def n_columns(self) -> int:
        return len(self.encodings)

    def encodings_dict(self) -> list[dict[str, Any]]:
        return [asdict(e) for e in self.encodings]


def build_design(
    frame: pd.DataFrame,
    *,
    source: str,
    target: str,
    task: str = "auto",
    impute: bool = False,
    cv: int = 5,
    drop: list[str] = (),
) -> Design:
    """Check ``frame`` and turn it into a standardized design; every problem is a CommandError."""
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    if target not in columns:
        raise CommandError(
            f"target column {target!r} not found in {source}; its columns are {name_list(columns)}"
        )
    if len(set(columns)) < len(columns):
        twice = sorted({c for c in columns if columns.count(c) > 1})
        raise CommandError(f"{source} has two columns named {name_list(twice)}; rename one")
    n_rows = len(frame)
    min_rows = ROWS_PER_FOLD * cv
    if n_rows < min_rows:
        rows = "row" if n_rows == 1 else "rows"
        raise CommandError(
            f"{source} has {n_rows} data {rows}; {cv}-fold cross-validation needs at least "
            f"{min_rows} ({ROWS_PER_FOLD} per fold; lower --cv for a smaller file)"
        )
    screening = screen_columns(frame, target=target, drop=list(drop), source=source)
    encoded_target = encode_target(frame[target], target, task, cv)
    encodings, imputed = _learn_encodings(frame, screening.features, impute)
    X, mean, scale = _standardize(encode(frame, encodings, source=source))
    owners = [e.name for e in encodings for _ in e.feature_levels]
    return Design(
        source=source,
        target=target,
        task=encoded_target.task,
        task_reason=encoded_target.reason,
        X=X,
        y=encoded_target.y,
        classes=encoded_target.classes,
        encodings=encodings,
        feature_names=[name for e in encodings for name in e.feature_names],
        columns=owners,
        levels=[level for e in encodings for level in e.feature_levels],
        mean=mean,
        scale=scale,
        left_out=screening.to_dict(),
        imputed=imputed,
        notes=encoded_target.notes,
    )


def _learn_encodings(
    frame: pd.DataFrame, features: list[str], impute: bool
) -> tuple[list[ColumnEncoding], list[dict[str, Any]]]:
    """Each feature column's encoding, and the record of what ``--impute`` fills in."""
    encodings: list[ColumnEncoding] = []
    imputed: list[dict[str, Any]] = []
    missing: list[tuple[str, int, int]] = []
    for column in features:
        series = frame[column]
        is_missing = series.isna().to_numpy()
        if is_missing.any():
            missing.append((column, int(is_missing.sum()), first_row(is_missing)))
        learn = _numeric_encoding if is_numeric(series) else _text_encoding
        encoding = learn(series[~is_missing], column)
        if impute:  # every column, so that a new table's missing cells are filled too
            encoding.fill = _fill_value(series[~is_missing], encoding)
        if is_missing.any() and impute:
            by = "median" if encoding.kind == "numeric" else "most frequent"
            imputed.append(
                {
                    "column": column,
                    "missing": int(is_missing.sum()),
                    "value": encoding.fill,
                    "by": by,
                }
            )
        encodings.append(encoding)
    # Reported once every column has been checked: a worse problem of a later column (an
    # infinite value, a stray word) is named first.
    if missing and not impute:
        column, count, row = missing[0]
        others = f" (and {plural(len(missing) - 1, 'more column')})" if len(missing) > 1 else ""
        raise CommandError(
            f"column {column!r} has {plural(count, 'missing value')}, "
            f"{'the first ' if count > 1 else ''}in data row {row}{others}; pass --impute to "
            "fill them (median of a numeric column, most frequent value of a text column) or "
            "remove those rows"
        )
    return encodings, imputed


def _numeric_encoding(present: pd.Series, column: str) -> ColumnEncoding:
    values = present.astype("float64").to_numpy()
    infinite = np.isinf(values)
    if infinite.any():
        row = int(present.index[np.flatnonzero(infinite)[0]]) + 1
        raise CommandError(
            f"column {column!r} has an infinite value ({values[infinite][0]}) in data row {row}"
        )
    return ColumnEncoding(column, "numeric")


def _text_encoding(present: pd.Series, column: str) -> ColumnEncoding:
    if mostly_numbers(present):  # a typo to fix, not ten thousand levels
        bad = first_non_number(present)
        row = int(present.index[bad[0] - 1]) + 1
        raise CommandError(
            f"column {column!r} holds numbers except for {bad[1]!r} in data row {row}; "
            "fix that value or leave the cell empty, or name it with --na-values"
        )
    levels = sorted(set(present.map(str)))
    if len(levels) > MAX_LEVELS:
        raise CommandError(
            f"column {column!r} is text with {len(levels)} distinct values, more than "
            f"the {MAX_LEVELS} levels l1reg fit one-hot encodes; drop it (--drop) or group "
            "its values"
        )
    return ColumnEncoding(column, "text", levels=levels)


def _fill_value(present: pd.Series, encoding: ColumnEncoding) -> float | str:
    if encoding.kind == "numeric":
        return float(np.median(present.astype("float64").to_numpy()))
    return str(present.map(str).mode().sort_values().iloc[0])


def encode(frame: pd.DataFrame, encodings: list[ColumnEncoding], *, source: str) -> np.ndarray:
    """The model features of ``frame`` (before standardization), shape (n_rows, n_features).

    The columns are found by name (others are ignored); a column missing from ``frame``, a
    missing cell without a fill value, a word in a numeric column or a text level the encoding
    does not know is a CommandError naming it.
    """
    import pandas as pd

    absent = [e.name for e in encodings if e.name not in frame.columns]
    if absent:
        raise CommandError(f"{source} lacks the column {name_list(absent)} the model uses")
    blocks = []
    for encoding in encodings:
        series = frame[encoding.name]
        is_missing = series.isna().to_numpy()
        if is_missing.any() and encoding.fill is None:
            raise CommandError(
                f"column {encoding.name!r} of {source} has a missing value in data row "
                f"{first_row(is_missing)}, and the model was fitted without --impute"
            )
        if encoding.kind == "numeric":
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
            bad = np.isnan(values) & ~is_missing
            if bad.any():
                raise CommandError(
                    f"column {encoding.name!r} of {source} is numeric in the model, but holds "
                    f"{str(series.iloc[first_row(bad) - 1])!r} in data row {first_row(bad)}"
                )
            if np.isinf(values).any():
                raise CommandError(
                    f"column {encoding.name!r} of {source} has an infinite value in data row "
                    f"{first_row(np.isinf(values))}"
                )
            blocks.append(np.where(is_missing, encoding.fill or 0.0, values)[:, np.newaxis])
            continue
        text = series.astype("object").where(~is_missing, encoding.fill).map(str)
        codes = pd.Categorical(text, categories=encoding.levels).codes
        unseen = codes < 0
        if unseen.any():
            raise CommandError(
                f"column {encoding.name!r} of {source} has the level "
                f"{text.iloc[first_row(unseen) - 1]!r} (data row {first_row(unseen)}), which the "
                f"model does not know; its levels are {name_list(encoding.levels)}"
            )
        features = [encoding.levels.index(level) for level in encoding.feature_levels]
        blocks.append((codes[:, np.newaxis] == np.array(features)).astype(np.float64))
    return np.hstack(blocks)


def _standardize(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X standardized, the means, the standard deviations)."""
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    # A feature constant after imputation (one value besides the filled cells' median) stays 0
    # after centering: coefficient 0.
    scale[scale == 0] = 1.0
    return (X - mean) / scale, mean, scale
