"""The ``l1reg`` command: fit a sparse linear model to a CSV file, the demo, inspect a checkpoint.

    l1reg demo                                  both bundled data sets, written to ./l1reg-demo/
    l1reg fit DATA.csv --target COLUMN          Lasso or L1 logistic regression, alpha chosen by CV
    l1reg inspect CHECKPOINT                    exact zeros per tensor of a saved model

``l1reg fit`` reads the CSV with pandas: numeric columns are used as they are, text columns are
one-hot encoded (one model feature per level, grouped back under their column in the report).
Every model feature is standardized (mean 0, standard deviation 1) before the fit, so one alpha
penalizes all features alike; the report gives each coefficient in the units of its column and
per standard deviation. The model is ``LassoCV`` for a regression and ``L1LogisticRegressionCV``
for a classification; the report shows the model refit at ``alpha_min`` (the lowest mean CV error)
and how many features survive at ``alpha_1se`` (the largest alpha within one standard error of it).

``--alpha A`` skips the search: the model is fitted once at A and its score is cross-validated at A
on the same folds. alpha_min, alpha_1se and the two plots, which describe a search over alphas, are
then not produced; the JSON summary has ``"alpha_source": "given"`` and nulls for them.

Errors (a missing file, a bad target column, missing values without ``--impute``, too few rows, a
bad option) print one line on stderr and exit with status 2, before any file is written. Output
files are written under temporary names and renamed into place once all of them are complete.

Importing this module is cheap: pandas, scikit-learn, matplotlib, tqdm and the estimators are
imported by the command that needs them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["main"]

PROG = "l1reg"
DEFAULT_FIT_OUT = Path("l1reg-out")
DEFAULT_DEMO_OUT = Path("l1reg-demo")
# A text column with more levels than this is almost surely an identifier or a mistyped number.
MAX_LEVELS = 100
# Cross-validation needs this many rows per fold at least.
ROWS_PER_FOLD = 2
# The alpha grid runs from alpha_max down to GRID_EPS * alpha_max, for both tasks (the
# estimators' default).
GRID_EPS = 1e-3
# Fits stop at a duality gap of FIT_TOL times the objective at w = 0, 100 times tighter than the
# estimators' default: one-hot levels are collinear with the intercept, and at 1e-4 a Lasso on such
# data stopped, certified, with two levels in its support that the exact solution does not have.
FIT_TOL = 1e-6

COEFFICIENTS_CSV = "coefficients.csv"
SUMMARY_JSON = "summary.json"
PATH_PNG = "coefficient_path.png"
CV_PNG = "cv_error.png"


class CommandError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


# --------------------------------------------------------------------------------------------------
# Reading and encoding the data


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


def read_csv(path: str) -> pd.DataFrame:
    """The CSV at ``path`` as a DataFrame, or a :class:`CommandError` naming the file."""
    file = Path(path)
    if not file.exists():
        raise CommandError(f"cannot read data file {path!r}: no such file")
    if not file.is_file():
        raise CommandError(f"cannot read data file {path!r}: not a file")
    import pandas as pd

    try:
        return pd.read_csv(file)
    except pd.errors.EmptyDataError:
        raise CommandError(f"cannot read data file {path!r}: it is empty") from None
    except pd.errors.ParserError as error:
        reason = str(error).strip().splitlines()[-1]
        raise CommandError(f"cannot parse data file {path!r} as CSV: {reason}") from None
    except UnicodeDecodeError:
        raise CommandError(f"cannot read data file {path!r}: it is not UTF-8 text") from None
    except OSError as error:
        raise CommandError(f"cannot read data file {path!r}: {error.strerror or error}") from None


def _first_row(mask: np.ndarray) -> int:
    """The 1-based data row (header not counted) of the first True in ``mask``."""
    return int(np.flatnonzero(mask)[0]) + 1


def _name_list(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _is_numeric(series: pd.Series) -> bool:
    import pandas as pd

    return pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series)


def _first_non_number(series: pd.Series) -> tuple[int, str] | None:
    """(row, value) of the first present value of ``series`` that is not a number, else None."""
    import pandas as pd

    parsed = pd.to_numeric(series, errors="coerce")
    bad = (parsed.isna() & series.notna()).to_numpy()
    if not bad.any():
        return None
    row = _first_row(bad)
    return row, str(series.iloc[row - 1])


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
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    if target not in columns:
        raise CommandError(
            f"target column {target!r} not found in {source}; its columns are {_name_list(columns)}"
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

    y, classes, task, task_reason = _encode_target(frame[target], target, task, cv)

    blocks: list[np.ndarray] = []
    names: list[str] = []
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
            missing.append((column, int(is_missing.sum()), _first_row(is_missing)))
            if not impute:
                continue
        if _is_numeric(series):
            values = series.astype("float64").to_numpy()
            infinite = np.isinf(values)
            if infinite.any():
                raise CommandError(
                    f"column {column!r} has an infinite value ({values[infinite][0]}) "
                    f"in data row {_first_row(infinite)}"
                )
            if is_missing.any():
                fill = float(np.median(values[~is_missing]))
                values = np.where(is_missing, fill, values)
                imputed.append(
                    {
                        "column": column,
                        "missing": int(is_missing.sum()),
                        "value": fill,
                        "by": "median",
                    }
                )
            blocks.append(values[:, np.newaxis])
            names.append(column)
            owners.append(column)
            levels.append(None)
            continue
        # A text column: one-hot encoded, one model feature per level.
        present = series[~is_missing]
        bad = _first_non_number(present)
        numbers_share = pd.to_numeric(present, errors="coerce").notna().mean()
        if bad is not None and numbers_share >= 0.9 and len(present) >= 10:
            row = int(np.flatnonzero(~is_missing)[bad[0] - 1]) + 1
            raise CommandError(
                f"column {column!r} holds numbers except for {bad[1]!r} in data row {row}; "
                "fix that value or leave the cell empty"
            )
        text = series.astype("object").where(~is_missing, None)
        text = text.map(lambda v: None if v is None else str(v))
        if is_missing.any():
            fill = str(text[~is_missing].mode().sort_values().iloc[0])
            text = text.where(~is_missing, fill)
            imputed.append(
                {
                    "column": column,
                    "missing": int(is_missing.sum()),
                    "value": fill,
                    "by": "most frequent",
                }
            )
        column_levels = sorted(set(text))
        if len(column_levels) > MAX_LEVELS:
            raise CommandError(
                f"column {column!r} is text with {len(column_levels)} distinct values, more than "
                f"the {MAX_LEVELS} levels l1reg fit one-hot encodes; drop it or group its values"
            )
        codes = pd.Categorical(text, categories=column_levels).codes
        blocks.append((codes[:, np.newaxis] == np.arange(len(column_levels))).astype(np.float64))
        names.extend(f"{column}={level}" for level in column_levels)
        owners.extend([column] * len(column_levels))
        levels.extend(column_levels)
    if missing and not impute:
        column, count, row = missing[0]
        others = f" (and {_plural(len(missing) - 1, 'more column')})" if len(missing) > 1 else ""
        raise CommandError(
            f"column {column!r} has {_plural(count, 'missing value')}, "
            f"{'the first ' if count > 1 else ''}in data row {row}{others}; pass --impute to "
            "fill them (median of a numeric column, most frequent value of a text column) or "
            "remove those rows"
        )

    X = np.hstack(blocks)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    constant_features = scale == 0
    scale[constant_features] = 1.0  # a constant feature stays at 0 after centering: coefficient 0
    constant = [names[j] for j in np.flatnonzero(constant_features)]
    X = (X - mean) / scale
    return Design(
        source=source,
        target=target,
        task=task,
        task_reason=task_reason,
        X=X,
        y=y,
        classes=classes,
        feature_names=names,
        columns=owners,
        levels=levels,
        n_columns=len(feature_columns),
        mean=mean,
        scale=scale,
        imputed=imputed,
        constant=constant,
    )


def _encode_target(
    series: pd.Series, target: str, task: str, cv: int
) -> tuple[np.ndarray, list[Any] | None, str, str]:
    """(y, classes, task, how the task was chosen) for the target column, checked."""
    is_missing = series.isna().to_numpy()
    if is_missing.any():
        count = int(is_missing.sum())
        raise CommandError(
            f"target column {target!r} has {_plural(count, 'missing value')}, "
            f"{'the first ' if count > 1 else ''}in data row {_first_row(is_missing)}; "
            "--impute fills features only: remove those rows"
        )
    numeric = _is_numeric(series)
    n_distinct = int(series.nunique())
    if n_distinct < 2:
        raise CommandError(
            f"target column {target!r} has the same value ({_plain(series.iloc[0])!r}) in every "
            "row; there is nothing to predict"
        )
    if not numeric and task != "classification":
        row, value = _first_non_number(series) or (1, str(series.iloc[0]))
        hint = (
            "" if task == "regression" else "; pass --task classification if its values are classes"
        )
        raise CommandError(
            f"target column {target!r} is not numeric ({value!r} in data row {row}){hint}"
        )
    if task == "auto":
        if n_distinct == 2:
            task, reason = "classification", "auto: the target has 2 distinct values"
        else:
            task = "regression"
            reason = f"auto: numeric target with {n_distinct} distinct values"
    else:
        reason = "--task " + task
    if task == "regression":
        y = series.astype("float64").to_numpy()
        if not np.isfinite(y).all():
            bad = ~np.isfinite(y)
            raise CommandError(
                f"target column {target!r} has an infinite value in data row {_first_row(bad)}"
            )
        return y, None, task, reason
    labels = series.to_numpy()
    classes, y = np.unique(labels, return_inverse=True)
    counts = np.bincount(y, minlength=len(classes))
    if counts.min() < cv:
        smallest = int(np.argmin(counts))
        raise CommandError(
            f"class {classes[smallest]!r} of target column {target!r} has {counts[smallest]} "
            f"row{'s' if counts[smallest] > 1 else ''}; stratified {cv}-fold cross-validation "
            f"needs at least {cv} rows of every class (lower --cv; or is this target really "
            f"{len(classes)} classes?)"
        )
    return y.astype(np.int64), [_plain(c) for c in classes], task, reason


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value JSON can hold."""
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------------------------------------
# Fitting


@dataclass
class FitResult:
    """What the estimator found, in the standardized coordinates of the design."""

    estimator: str
    alpha: float
    alpha_source: str  # "cv" (alpha_min) or "given"
    alpha_min: float | None
    alpha_1se: float | None
    alphas: np.ndarray | None  # (n_alphas,), decreasing
    cv_errors: np.ndarray | None  # (n_alphas, n_folds): held-out MSE or log-loss
    fold_errors: np.ndarray  # (n_folds,) at alpha
    coef: np.ndarray  # (n_outputs, n_features)
    intercept: np.ndarray  # (n_outputs,)
    coef_path: np.ndarray | None  # (n_outputs, n_features, n_alphas)
    warnings: list[str]


class _Progress:
    """The estimators' ``callback(n_done, n_total)`` drawing a tqdm bar on stderr, or nothing."""

    def __init__(self, enabled: bool, description: str) -> None:
        self.enabled = enabled
        self.description = description
        self.bar = None

    def __call__(self, n_done: int, n_total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=n_total, desc=self.description, unit="fit", leave=False, file=sys.stderr
            )
        self.bar.total = n_total
        self.bar.update(max(0, n_done - self.bar.n))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def fit_design(design: Design, *, cv: int, alpha: float | None, progress: _Progress) -> FitResult:
    """Fit the CV estimator (or, with ``alpha``, the plain one plus its CV score at alpha)."""
    from l1reg.linear_model import (
        L1LogisticRegression,
        L1LogisticRegressionCV,
        Lasso,
        LassoCV,
    )

    regression = design.task == "regression"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if alpha is None:
            if regression:
                model = LassoCV(cv=cv, eps=GRID_EPS, tol=FIT_TOL, callback=progress)
            else:
                model = L1LogisticRegressionCV(cv=cv, eps=GRID_EPS, tol=FIT_TOL, callback=progress)
            model.fit(design.X, design.y)
            alphas = np.asarray(model.alphas_, dtype=float)
            errors = np.asarray(model.mse_path_ if regression else model.loss_path_, dtype=float)
            chosen = int(np.argmin(np.abs(alphas - model.alpha_)))
            coef_path = np.asarray(model.coef_path_, dtype=float)
            if coef_path.ndim == 2:
                coef_path = coef_path[np.newaxis]
            result = FitResult(
                estimator=type(model).__name__,
                alpha=float(model.alpha_),
                alpha_source="cv",
                alpha_min=float(model.alpha_),
                alpha_1se=float(model.alpha_1se_),
                alphas=alphas,
                cv_errors=errors,
                fold_errors=errors[chosen],
                coef=np.atleast_2d(np.asarray(model.coef_, dtype=float)),
                intercept=np.atleast_1d(np.asarray(model.intercept_, dtype=float)),
                coef_path=coef_path,
                warnings=[],
            )
        else:
            make = (
                (lambda: Lasso(alpha=alpha, tol=FIT_TOL))
                if regression
                else (lambda: L1LogisticRegression(alpha=alpha, tol=FIT_TOL))
            )
            fold_errors = _cross_validate(make, design, cv, progress)
            model = make().fit(design.X, design.y)
            progress(cv + 1, cv + 1)
            result = FitResult(
                estimator=type(model).__name__,
                alpha=float(alpha),
                alpha_source="given",
                alpha_min=None,
                alpha_1se=None,
                alphas=None,
                cv_errors=None,
                fold_errors=fold_errors,
                coef=np.atleast_2d(np.asarray(model.coef_, dtype=float)),
                intercept=np.atleast_1d(np.asarray(model.intercept_, dtype=float)),
                coef_path=None,
                warnings=[],
            )
    result.warnings = _summarize_warnings(caught)
    return result


def _cross_validate(make, design: Design, cv: int, progress: _Progress) -> np.ndarray:
    """Held-out MSE (regression) or mean log-loss (classification) per fold at a fixed alpha."""
    from sklearn.model_selection import check_cv

    # The folds of the CV estimators: KFold, or StratifiedKFold for classes, unshuffled.
    regression = design.task == "regression"
    splitter = check_cv(cv, design.y, classifier=not regression)
    errors = np.empty(cv)
    for k, (train, test) in enumerate(splitter.split(design.X, design.y)):
        model = make().fit(design.X[train], design.y[train])
        if regression:
            errors[k] = np.mean((model.predict(design.X[test]) - design.y[test]) ** 2)
        else:
            proba = model.predict_proba(design.X[test])
            column = np.searchsorted(np.asarray(model.classes_), design.y[test])
            picked = np.clip(proba[np.arange(len(test)), column], 1e-15, 1.0)
            errors[k] = -np.mean(np.log(picked))
        progress(k + 1, cv + 1)
    return errors


def _summarize_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """One line per distinct warning, with how many times it was raised."""
    counts: dict[str, int] = {}
    for item in caught:
        text = str(item.message).strip().splitlines()
        line = f"{item.category.__name__}: {text[0] if text else ''}"
        counts[line] = counts.get(line, 0) + 1
    return [line if n == 1 else f"{line} ({n} times)" for line, n in counts.items()]


# --------------------------------------------------------------------------------------------------
# The report: one summary dict, printed as a table or as JSON, and the files


def _stderr_of_mean(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def summarize(design: Design, result: FitResult, *, cv: int) -> dict[str, Any]:
    """The JSON summary of a fit; the printed table and the CSV are made from it."""
    coef_std = result.coef  # (n_outputs, n_features)
    coef_orig = coef_std / design.scale
    intercept_orig = result.intercept - coef_std @ (design.mean / design.scale)
    if design.task == "regression":
        outputs: list[Any] = [None]
    elif coef_std.shape[0] == 1:
        outputs = [design.classes[1]]  # binary: the log-odds of the second class
    else:
        outputs = list(design.classes)
    single = len(outputs) == 1

    kept_feature = np.any(coef_std != 0, axis=0)
    order_key = np.max(np.abs(coef_std), axis=0)
    groups: dict[str, list[int]] = {}
    for j in np.flatnonzero(kept_feature):
        groups.setdefault(design.columns[j], []).append(int(j))
    ordered = sorted(groups.items(), key=lambda item: -max(order_key[j] for j in item[1]))
    selected = []
    for column, members in ordered:
        for j in sorted(members, key=lambda j: -order_key[j]):
            row: dict[str, Any] = {
                "feature": design.feature_names[j],
                "column": column,
                "level": design.levels[j],
            }
            if single:
                row["coefficient"] = float(coef_orig[0, j])
                row["per_sd"] = float(coef_std[0, j])
            else:
                row["coefficient"] = {str(c): float(coef_orig[k, j]) for k, c in enumerate(outputs)}
                row["per_sd"] = {str(c): float(coef_std[k, j]) for k, c in enumerate(outputs)}
            selected.append(row)

    fold = result.fold_errors
    if design.task == "regression":
        mse = float(np.mean(fold))
        variance = float(np.var(design.y))
        score = {
            "metric": "mean squared error",
            "mean": mse,
            "std_error": _stderr_of_mean(fold),
            "r2": _finite(1.0 - mse / variance) if variance > 0 else None,
        }
    else:
        frequencies = np.bincount(design.y) / len(design.y)
        baseline = float(-np.sum(frequencies * np.log(frequencies)))
        score = {
            "metric": "log-loss",
            "mean": float(np.mean(fold)),
            "std_error": _stderr_of_mean(fold),
            "baseline": baseline,
        }

    kept_at_1se = None
    if result.coef_path is not None and result.alpha_1se is not None:
        index = int(np.argmin(np.abs(result.alphas - result.alpha_1se)))
        at_1se = np.any(result.coef_path[:, :, index] != 0, axis=0)
        kept_at_1se = len({design.columns[j] for j in np.flatnonzero(at_1se)})

    return {
        "data": design.source,
        "target": design.target,
        "task": design.task,
        "task_reason": design.task_reason,
        "classes": design.classes,
        "estimator": result.estimator,
        "rows": int(design.X.shape[0]),
        "columns": design.n_columns,
        "model_features": int(design.X.shape[1]),
        "cv_folds": cv,
        "alpha": result.alpha,
        "alpha_source": result.alpha_source,
        "alpha_min": result.alpha_min,
        "alpha_1se": result.alpha_1se,
        "score": score,
        "kept": len(groups),
        "kept_model_features": int(kept_feature.sum()),
        "kept_at_alpha_1se": kept_at_1se,
        "coefficient_of": None if design.task == "regression" else [str(c) for c in outputs],
        "intercept": float(intercept_orig[0])
        if single
        else {str(c): float(intercept_orig[k]) for k, c in enumerate(outputs)},
        "selected": selected,
        "text_levels": {
            column: design.columns.count(column)
            for column, level in zip(design.columns, design.levels)
            if level is not None
        },
        "imputed": design.imputed,
        "constant_features": design.constant,
        "notes": _grid_notes(result),
        "warnings": result.warnings,
    }


def _grid_notes(result: FitResult) -> list[str]:
    """Warnings about a CV minimum at an end of the alpha grid, where the search was cut short."""
    if result.alphas is None or result.alpha_min is None:
        return []
    if result.alpha_min <= result.alphas.min():
        return [
            "alpha_min is the smallest alpha of the grid; the CV error may fall further below it"
        ]
    if result.alpha_min >= result.alphas.max():
        return ["alpha_min is alpha_max: no feature lowers the CV error below the intercept alone"]
    return []


def _num(value: float, digits: int = 5) -> str:
    text = f"{value:.{digits}g}"
    return "0" if text in ("-0", "0") else text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def format_report(summary: dict[str, Any], files: list[str] | None, out_dir: str | None) -> str:
    """The human-readable report: a header, the selected features table, where the files went."""
    regression = summary["task"] == "regression"
    model = "Lasso" if regression else "L1 logistic regression"
    lines = [
        f"{summary['data']}: predict {summary['target']!r}, {summary['task']} "
        f"({summary['task_reason']})",
        f"{summary['rows']} rows, {_plural(summary['columns'], 'feature column')}"
        + (
            f" ({summary['model_features']} model features after one-hot encoding)"
            if summary["model_features"] != summary["columns"]
            else ""
        )
        + f"; {model} on standardized features",
        "",
    ]
    score = summary["score"]
    score_text = f"{score['metric']} {_num(score['mean'])} ± {_num(score['std_error'], 2)}"
    if regression and score.get("r2") is not None:
        score_text += f" (R² {score['r2']:.3f})"
    if not regression:
        score_text += f" ({_num(score['baseline'], 3)} from class frequencies alone)"
    folds = f"{summary['cv_folds']}-fold"
    kept = f"{summary['kept']} of {summary['columns']} features"
    if summary["model_features"] != summary["columns"]:
        kept += f" ({summary['kept_model_features']} of {summary['model_features']} model features)"
    if summary["alpha_source"] == "cv":
        facts = [
            ("alpha_min", _num(summary["alpha_min"]), "lowest mean CV error: the model below"),
            (
                "alpha_1se",
                _num(summary["alpha_1se"]),
                f"largest alpha within one standard error of it: "
                f"{summary['kept_at_alpha_1se']} of {summary['columns']} features",
            ),
            ("CV score", f"{score_text}, {folds}, at alpha_min", ""),
        ]
    else:
        facts = [
            ("alpha", _num(summary["alpha"]), "given with --alpha (no search over alphas)"),
            ("CV score", f"{score_text}, {folds}, at this alpha", ""),
        ]
    facts.append(("kept", kept, ""))
    width = max(len(value) for label, value, note in facts if label.startswith("alpha"))
    for label, value, note in facts:
        if label.startswith("alpha"):
            value = value.ljust(width)
        lines.append(f"{label:<11}{value}   {note}".rstrip() if note else f"{label:<11}{value}")
    lines.append("")
    lines += _coefficient_table(summary)
    for item in summary["imputed"]:
        value = _num(item["value"]) if isinstance(item["value"], float) else repr(item["value"])
        lines.append(
            f"imputed: {_plural(item['missing'], 'missing value')} of {item['column']!r} "
            f"set to {value} ({item['by']})"
        )
    for note in summary["notes"]:
        lines.append(f"note: {note}")
    if summary["constant_features"]:
        lines.append(f"constant, so unused: {_name_list(summary['constant_features'])}")
    if files and out_dir is not None:
        lines.append(f"wrote {out_dir}{os.sep}: {', '.join(files)}")
    return "\n".join(lines)


def _coefficient_table(summary: dict[str, Any]) -> list[str]:
    outputs = summary["coefficient_of"]
    single = outputs is None or len(outputs) == 1
    if single:
        unit = "coefficient" if outputs is None else f"log-odds of {outputs[0]}"
        header = ["feature", unit, "per SD"]
    else:
        header = ["feature", *(f"log-odds of {c}" for c in outputs)]
    rows: list[list[str]] = []
    previous_column = None
    for row in summary["selected"]:
        name = row["feature"]
        if row["level"] is not None:
            if row["column"] != previous_column:
                kept = sum(r["column"] == row["column"] for r in summary["selected"])
                total = summary["text_levels"][row["column"]]
                label = f"{row['column']} (text: {kept} of {total} levels kept)"
                rows.append([label, *([""] * (len(header) - 1))])
            name = f"  ={row['level']}"
        previous_column = row["column"]
        if single:
            rows.append([name, _num(row["coefficient"]), _num(row["per_sd"])])
        else:
            rows.append([name, *(_num(row["coefficient"][str(c)]) for c in outputs)])
    intercept = summary["intercept"]
    if single:
        footer = ["(intercept)", _num(intercept), ""]
    else:
        footer = ["(intercept)", *(_num(intercept[str(c)]) for c in outputs)]
    table = [header, *rows, footer]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [cells[0].ljust(widths[0])]
        parts += [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:])]
        return "  ".join(parts).rstrip()

    rule = "-" * len(line(header))
    out = [line(header), rule, *(line(r) for r in rows), rule, line(footer)]
    note = "coefficients are per unit of each column"
    if single:
        note += "; per SD: per standard deviation, comparable across features"
    if not rows:
        out.insert(2, "(no feature kept: every coefficient is zero at this alpha)")
    return [*out, note]


def coefficients_csv(design: Design, result: FitResult, summary: dict[str, Any]) -> str:
    """Every model feature (kept or not) with its coefficients, one row each, as CSV text."""
    import pandas as pd

    outputs = summary["coefficient_of"]
    table = pd.DataFrame(
        {"feature": design.feature_names, "column": design.columns, "level": design.levels}
    )
    coef_orig = result.coef / design.scale
    if outputs is None or len(outputs) == 1:
        table["coefficient"] = coef_orig[0]
        table["per_sd"] = result.coef[0]
    else:
        for k, c in enumerate(outputs):
            table[f"coefficient[{c}]"] = coef_orig[k]
        for k, c in enumerate(outputs):
            table[f"per_sd[{c}]"] = result.coef[k]
    table["kept"] = np.any(result.coef != 0, axis=0)
    table["mean"] = design.mean
    table["sd"] = design.scale
    return table.to_csv(index=False, float_format="%.10g")


def render_plots(design: Design, result: FitResult, summary: dict[str, Any]) -> dict[str, bytes]:
    """The two PNGs of a search over alphas; none for a fit at a given alpha."""
    if result.coef_path is None:
        return {}
    from l1reg.plotting import plot_coefficient_path, plot_cv_error, png_bytes

    name = f"{Path(design.source).name}, target {design.target!r}"
    outputs = summary["coefficient_of"]
    regression = design.task == "regression"
    path_figure = plot_coefficient_path(
        result.alphas,
        result.coef_path,
        feature_names=design.feature_names,
        alpha_min=result.alpha_min,
        alpha_1se=result.alpha_1se,
        output_names=None if outputs is None or len(outputs) == 1 else outputs,
        title=f"{name}: coefficient path",
        ylabel="coefficient per SD"
        if outputs is None
        else f"log-odds{' of ' + str(outputs[0]) if len(outputs) == 1 else ''} per SD",
    )
    n_selected = [
        len({design.columns[j] for j in np.flatnonzero(np.any(result.coef_path[:, :, i] != 0, 0))})
        for i in range(len(result.alphas))
    ]
    cv_figure = plot_cv_error(
        result.alphas,
        result.cv_errors,
        alpha_min=result.alpha_min,
        alpha_1se=result.alpha_1se,
        n_selected=n_selected,
        title=f"{name}: {summary['cv_folds']}-fold cross-validation",
        ylabel="held-out mean squared error" if regression else "held-out log-loss",
    )
    return {PATH_PNG: png_bytes(path_figure), CV_PNG: png_bytes(cv_figure)}


def _check_out_dir(out_dir: Path) -> None:
    """Fail before any work when ``out_dir`` cannot be a folder we write into."""
    for folder in [out_dir, *out_dir.parents]:
        if folder.exists():
            if not folder.is_dir():
                raise CommandError(
                    f"cannot write to --out {str(out_dir)!r}: {str(folder)!r} is a file"
                )
            if not os.access(folder, os.W_OK | os.X_OK):
                raise CommandError(f"cannot write to --out {str(out_dir)!r}: permission denied")
            return


def write_files(out_dir: Path, files: dict[str, bytes], *, stale: tuple[str, ...] = ()) -> None:
    """Write every file under a temporary name, then rename them all into place.

    On any failure the temporary files (and folders this call created) are removed, so ``out_dir``
    holds either the complete new set or what it held before. The files named in ``stale`` (outputs
    of an earlier run that this run does not make) are removed once the new set is in place.
    """
    created = [p for p in [out_dir, *out_dir.parents] if not p.exists()]
    temporary: dict[str, str] = {}
    umask = os.umask(0)
    os.umask(umask)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            handle, temp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".tmp")
            temporary[name] = temp
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.chmod(temp, 0o666 & ~umask)  # mkstemp makes it private; give it the usual mode
        for name, temp in temporary.items():
            os.replace(temp, out_dir / name)
    except BaseException as error:
        for temp in temporary.values():
            Path(temp).unlink(missing_ok=True)
        for folder in created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                pass
        if isinstance(error, OSError):
            raise CommandError(
                f"cannot write to --out {str(out_dir)!r}: {error.strerror or error}"
            ) from None
        raise
    for name in stale:
        if name not in files:
            (out_dir / name).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# The commands


def _run_job(
    design: Design,
    *,
    cv: int,
    alpha: float | None,
    out_dir: Path,
    progress: _Progress,
) -> tuple[dict[str, Any], list[str]]:
    """Fit, report and write the files of one design; returns the summary and the file names."""
    try:
        result = fit_design(design, cv=cv, alpha=alpha, progress=progress)
    finally:
        progress.close()
    summary = summarize(design, result, cv=cv)
    plots = render_plots(design, result, summary)
    files = [COEFFICIENTS_CSV, SUMMARY_JSON, *plots]
    summary["out_dir"] = str(out_dir)
    summary["files"] = files
    contents = {
        COEFFICIENTS_CSV: coefficients_csv(design, result, summary).encode(),
        SUMMARY_JSON: (_to_json(summary) + "\n").encode(),
        **plots,
    }
    write_files(out_dir, contents, stale=(PATH_PNG, CV_PNG))
    for line in result.warnings:
        print(f"{PROG}: warning: {line}", file=sys.stderr)
    return summary, files


def _to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)


def _progress_enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr is not None and sys.stderr.isatty()


def _cmd_fit(args: argparse.Namespace) -> int:
    out_dir = Path(args.out) if args.out else DEFAULT_FIT_OUT / Path(args.data).stem
    _check_out_dir(out_dir)
    frame = read_csv(args.data)
    design = build_design(
        frame, source=args.data, target=args.target, task=args.task, impute=args.impute, cv=args.cv
    )
    progress = _Progress(_progress_enabled(args.quiet), "cross-validation")
    summary, files = _run_job(
        design, cv=args.cv, alpha=args.alpha, out_dir=out_dir, progress=progress
    )
    if args.json:
        print(_to_json(summary))
    else:
        print(format_report(summary, files, str(out_dir)))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from l1reg.datasets import DATASETS

    out_dir = Path(args.out)
    _check_out_dir(out_dir)
    summaries = {}
    reports = []
    for name, dataset in DATASETS.items():
        frame = dataset.load()
        design = build_design(
            frame,
            source=str(out_dir / f"{name}.csv"),
            target=dataset.target,
            task=dataset.task,
            cv=args.cv,
        )
        design.task_reason = "bundled demo data"
        progress = _Progress(_progress_enabled(args.quiet), f"{name}: cross-validation")
        summary, files = _run_job(
            design, cv=args.cv, alpha=None, out_dir=out_dir / name, progress=progress
        )
        # The data set itself, so the same job can be rerun with l1reg fit.
        write_files(out_dir, {f"{name}.csv": frame.to_csv(index=False).encode()})
        summaries[name] = summary
        reports.append(
            f"== {dataset.description}\n"
            + format_report(summary, files, str(out_dir / name))
            + f"\nrerun it: {PROG} fit {out_dir / (name + '.csv')} --target {dataset.target}"
            + ("" if dataset.task == "regression" else f" --task {dataset.task}")
        )
    if args.json:
        print(_to_json(summaries))
    else:
        print("\n\n".join(reports))
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from l1reg.checkpoints import CheckpointError, load_checkpoint
    from l1reg.report import sparsity_report

    try:
        arrays = load_checkpoint(args.checkpoint)
    except CheckpointError as error:
        raise CommandError(str(error)) from None
    # Weights as PyTorch stores them: outputs x inputs (x kernel...).
    report = sparsity_report(arrays.items(), input_axis=1, output_axis=0)
    if args.json:
        print(_to_json({"checkpoint": str(args.checkpoint), **report.to_dict()}))
    else:
        print(f"{args.checkpoint}: {_plural(len(report.tensors), 'tensor')}")
        print(report)
    return 0


# --------------------------------------------------------------------------------------------------
# Parsing the command line


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (the usage is one --help away)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _cv_folds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 2:
        raise argparse.ArgumentTypeError(f"must be an integer >= 2, got {text!r}")
    return value


def _positive_alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="L1-regularized (sparse) linear models from the command line.",
    )
    from l1reg import __version__

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    fit = commands.add_parser(
        "fit",
        help="fit a Lasso / L1 logistic regression to a CSV file, alpha chosen by cross-validation",
        description=(
            "Read a CSV file, one-hot encode its text columns, standardize, fit LassoCV "
            "(regression) or L1LogisticRegressionCV (classification), print the selected "
            "features and write coefficients.csv, summary.json, coefficient_path.png and "
            "cv_error.png to --out."
        ),
    )
    fit.add_argument("data", metavar="DATA.csv", help="the data: a CSV file with a header row")
    fit.add_argument("--target", required=True, metavar="COLUMN", help="the column to predict")
    fit.add_argument(
        "--task",
        choices=("auto", "regression", "classification"),
        default="auto",
        help="auto (default): classification for a target of 2 distinct values, else regression",
    )
    fit.add_argument(
        "--cv", type=_cv_folds, default=5, metavar="K", help="cross-validation folds (default 5)"
    )
    fit.add_argument(
        "--alpha",
        type=_positive_alpha,
        metavar="A",
        help="fit at this alpha instead of choosing it by cross-validation (no plots then)",
    )
    fit.add_argument(
        "--out",
        metavar="DIR",
        help=f"where to write the files (default {DEFAULT_FIT_OUT}{os.sep}<name of DATA>)",
    )
    fit.add_argument("--json", action="store_true", help="print the JSON summary, not the table")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.add_argument(
        "--impute",
        action="store_true",
        help="fill missing feature values (median of a numeric column, most frequent text value)",
    )
    fit.set_defaults(run=_cmd_fit)

    demo = commands.add_parser(
        "demo",
        help="the fit job on two bundled data sets (diabetes, breast cancer)",
        description=(
            "Run l1reg fit on scikit-learn's diabetes data (regression) and breast cancer data "
            "(classification), print both reports and write the files and the data to --out."
        ),
    )
    demo.add_argument(
        "--out", default=str(DEFAULT_DEMO_OUT), metavar="DIR", help="default: %(default)s"
    )
    demo.add_argument("--cv", type=_cv_folds, default=5, metavar="K", help="folds (default 5)")
    demo.add_argument("--json", action="store_true", help="print the JSON summaries")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(run=_cmd_demo)

    inspect = commands.add_parser(
        "inspect",
        help="exact zeros per tensor of a checkpoint (.npz, .safetensors, torch.save state_dict)",
        description="Print the sparsity of every tensor of a saved model: zeros, L1 norm, inputs "
        "and outputs still in use (weights read as PyTorch lays them out: outputs x inputs).",
    )
    inspect.add_argument("checkpoint", metavar="CHECKPOINT", help="the file to read")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    inspect.set_defaults(run=_cmd_inspect)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``l1reg`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("choose a command: fit, demo or inspect")
    prog = f"{PROG} {args.command}"
    try:
        return args.run(args)
    except CommandError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`l1reg demo | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
