"""The fit: the estimators' own cross-validation, and what it found.

A regression is fitted by ``LassoCV``, a classification by ``L1LogisticRegressionCV`` (one-vs-rest
for more than two classes), on the standardized design, over a grid of alphas from ``alpha_max``
down to ``GRID_EPS * alpha_max``. With ``--alpha A`` the same estimator gets the grid ``[A]``: the
same folds, tolerance and progress callback, its fold errors at A and its refit on all data at A.
There is no other fold loop in the command. Warnings raised during the fit (a solver that stopped
without its certificate) are collected, one line each, for the report.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass

import numpy as np

from l1reg.cli.design import Design

__all__ = ["FIT_TOL", "GRID_EPS", "FitResult", "Progress", "fit_design"]

# The alpha grid runs from alpha_max down to GRID_EPS * alpha_max, for both tasks (the
# estimators' default).
GRID_EPS = 1e-3
# Fits stop at a duality gap of FIT_TOL times the objective at w = 0, 100 times tighter than the
# estimators' default: one-hot levels are collinear with the intercept, and at 1e-4 a Lasso on such
# data stopped, certified, with two levels in its support that the exact solution does not have.
FIT_TOL = 1e-6


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


class Progress:
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


def fit_design(design: Design, *, cv: int, alpha: float | None, progress: Progress) -> FitResult:
    """Cross-validate over the alpha grid, or at ``alpha`` alone, and refit on all the data.

    The folds are the estimators' own: ``KFold(cv)`` for a regression, ``StratifiedKFold(cv)`` for
    a classification, unshuffled. The CV error is the held-out mean squared error, or the held-out
    mean log-loss (for more than two classes, summed over the one-vs-rest problems).
    """
    from l1reg.linear_model import L1LogisticRegressionCV, LassoCV

    regression = design.task == "regression"
    # A given alpha is reported as the plain estimator's fit at A, which is what the refit of a
    # grid of one is; the JSON summary named it so before the fit went through the CV estimator.
    estimator, plain_name = (
        (LassoCV, "Lasso") if regression else (L1LogisticRegressionCV, "L1LogisticRegression")
    )
    grid = {} if alpha is None else {"alphas": [alpha]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = estimator(**grid, cv=cv, eps=GRID_EPS, tol=FIT_TOL, callback=progress)
        model.fit(design.X, design.y)
    errors = np.asarray(model.mse_path_ if regression else model.loss_path_, dtype=float)
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=float))
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=float))
    if alpha is not None:
        return FitResult(
            estimator=plain_name,
            alpha=float(alpha),
            alpha_source="given",
            alpha_min=None,
            alpha_1se=None,
            alphas=None,
            cv_errors=None,
            fold_errors=errors[0],
            coef=coef,
            intercept=intercept,
            coef_path=None,
            warnings=summarize_warnings(caught),
        )
    alphas = np.asarray(model.alphas_, dtype=float)
    chosen = int(np.argmin(np.abs(alphas - model.alpha_)))
    coef_path = np.asarray(model.coef_path_, dtype=float)
    if coef_path.ndim == 2:  # LassoCV's (n_features, n_alphas): one output
        coef_path = coef_path[np.newaxis]
    return FitResult(
        estimator=type(model).__name__,
        alpha=float(model.alpha_),
        alpha_source="cv",
        alpha_min=float(model.alpha_),
        alpha_1se=float(model.alpha_1se_),
        alphas=alphas,
        cv_errors=errors,
        fold_errors=errors[chosen],
        coef=coef,
        intercept=intercept,
        coef_path=coef_path,
        warnings=summarize_warnings(caught),
    )


def summarize_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """One line per distinct warning, with how many times it was raised."""
    counts: dict[str, int] = {}
    for item in caught:
        text = str(item.message).strip().splitlines()
        line = f"{item.category.__name__}: {text[0] if text else ''}"
        counts[line] = counts.get(line, 0) + 1
    return [line if n == 1 else f"{line} ({n} times)" for line, n in counts.items()]
