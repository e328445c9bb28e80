"""The fit: the estimators' own cross-validation, and what it found.

A regression is fitted by ``LassoCV``, a classification by ``L1LogisticRegressionCV`` (one-vs-rest
for more than two classes), on the standardized design, over a grid of alphas from ``alpha_max``
down to ``GRID_EPS * alpha_max``, on shuffled folds (``KFold``, or ``StratifiedKFold`` for a
classification, both seeded by ``--seed``): a file sorted by its target would otherwise give folds
that each miss a range of it. ``--select`` picks the model of the search: ``min`` the refit at
``alpha_min`` (the estimator's ``coef_``), ``1se`` the fit on all data at ``alpha_1se`` (the
estimator's path on all data at that alpha). With ``--alpha A`` the same estimator gets the grid
``[A]``: the same folds, tolerance and progress callback, its fold errors at A and its refit on all
data at A. There is no other fold loop in the command. Warnings raised during the fit (a solver that
stopped without its certificate) are collected, one line each, for the report.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from l1reg.cli.design import Design

__all__ = ["FIT_TOL", "GRID_EPS", "FitOptions", "FitResult", "Progress", "fit_design"]

# The alpha grid runs from alpha_max down to GRID_EPS * alpha_max, for both tasks (the
# estimators' default).
GRID_EPS = 1e-3
# Fits stop at a duality gap of FIT_TOL times the objective at w = 0, 100 times tighter than the
# estimators' default: one-hot levels are collinear with the intercept, and at 1e-4 a Lasso on such
# data stopped, certified, with two levels in its support that the exact solution does not have.
FIT_TOL = 1e-6


@dataclass(frozen=True)
class FitOptions:
    """What the user chose for the fit (the command's options)."""

    cv: int = 5
    seed: int = 0
    alpha: float | None = None
    select: str = "min"  # "min" or "1se"
    tol: float = FIT_TOL
    max_iter: int = 1000
    n_jobs: int | None = None
    stability: int | None = None  # complementary pairs of half-samples, or None: no such run


@dataclass
class FitResult:
    """What the estimator found, in the standardized coordinates of the design."""

    estimator: str
    model: Any  # the fitted estimator whose coefficients are reported (predicts from design.X)
    alpha: float
    alpha_source: str  # "alpha_min", "alpha_1se" or "given"
    alpha_min: float | None
    alpha_1se: float | None
    alphas: np.ndarray | None  # (n_alphas,), decreasing
    cv_errors: np.ndarray | None  # (n_alphas, n_folds): held-out MSE or log-loss
    fold_errors: np.ndarray  # (n_folds,) at alpha
    selection_frequency: np.ndarray  # (n_features,) fraction of the folds keeping each, at alpha
    coef: np.ndarray  # (n_outputs, n_features)
    intercept: np.ndarray  # (n_outputs,)
    coef_path: np.ndarray | None  # (n_outputs, n_features, n_alphas)
    warnings: list[str]
    stability: Any = None  # the fitted StabilitySelection of --stability B, or None


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
            self.bar = None

    def restart(self, description: str) -> None:
        """A new bar, for the next stage of the job."""
        self.close()
        self.description = description


def folds(design: Design, options: FitOptions):
    """The shuffled, seeded folds: stratified by class for a classification."""
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = StratifiedKFold if design.task == "classification" else KFold
    return splitter(n_splits=options.cv, shuffle=True, random_state=options.seed)


def fit_design(design: Design, options: FitOptions, progress: Progress) -> FitResult:
    """Cross-validate over the alpha grid, or at ``options.alpha`` alone, and fit on all data.

    The CV error is the held-out mean squared error, or the held-out mean log-loss (for more than
    two classes, summed over the one-vs-rest problems).
    """
    from l1reg.linear_model import L1LogisticRegression, L1LogisticRegressionCV, Lasso, LassoCV

    regression = design.task == "regression"
    estimator, plain = (
        (LassoCV, Lasso) if regression else (L1LogisticRegressionCV, L1LogisticRegression)
    )
    grid = {} if options.alpha is None else {"alphas": [options.alpha]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = estimator(
            **grid,
            cv=folds(design, options),
            eps=GRID_EPS,
            tol=options.tol,
            max_iter=options.max_iter,
            n_jobs=options.n_jobs,
            callback=progress,
        )
        model.fit(design.X, design.y)
    errors = np.asarray(model.mse_path_ if regression else model.loss_path_, dtype=float)
    alphas = np.asarray(model.alphas_, dtype=float)
    coef_path = np.asarray(model.coef_path_, dtype=float)
    intercept_path = np.asarray(model.intercept_path_, dtype=float)
    if coef_path.ndim == 2:  # LassoCV's (n_features, n_alphas): one output
        coef_path, intercept_path = coef_path[np.newaxis], intercept_path[np.newaxis]
    if options.alpha is not None:
        source, chosen = "given", 0
    elif options.select == "1se":
        source, chosen = "alpha_1se", int(np.flatnonzero(alphas == model.alpha_1se_)[0])
    else:
        source, chosen = "alpha_min", int(np.flatnonzero(alphas == model.alpha_)[0])
    coef, intercept = coef_path[:, :, chosen], intercept_path[:, chosen]
    reported = model
    if source == "alpha_1se":
        # The fit on all data at alpha_1se is the path's, as the fit at alpha_min is.
        reported = plain(alpha=float(alphas[chosen]), tol=options.tol, max_iter=options.max_iter)
        set_fitted(reported, coef, intercept, getattr(model, "classes_", None))
    searched = options.alpha is None
    stability = None
    if options.stability is not None:
        with warnings.catch_warnings(record=True) as more:
            warnings.simplefilter("always")
            stability = stability_selection(design, options, plain, progress)
        caught += more
    return FitResult(
        estimator=type(reported).__name__ if searched else plain.__name__,
        model=reported,
        alpha=float(alphas[chosen]),
        alpha_source=source,
        alpha_min=float(model.alpha_) if searched else None,
        alpha_1se=float(model.alpha_1se_) if searched else None,
        alphas=alphas if searched else None,
        cv_errors=errors if searched else None,
        fold_errors=errors[chosen],
        selection_frequency=np.asarray(model.selection_frequency_path_[:, chosen]),
        coef=coef,
        intercept=intercept,
        coef_path=coef_path if searched else None,
        warnings=summarize_warnings(caught),
        stability=stability,
    )


def stability_selection(design: Design, options: FitOptions, plain: type, progress: Progress):
    """``StabilitySelection`` over ``options.stability`` complementary pairs of half-samples.

    The base estimator is the plain one of the task with the fit's tolerance and iteration
    limit; the subsamples are drawn from ``--seed``; the grid and its region are the selector's
    defaults (the region ends where the half-samples select sqrt(0.8 p) features on average).
    """
    from l1reg.linear_model import StabilitySelection

    progress.restart("stability selection")
    selector = StabilitySelection(
        plain(tol=options.tol, max_iter=options.max_iter),
        n_resamples=options.stability,
        random_state=options.seed,
        n_jobs=options.n_jobs,
        callback=progress,
    )
    return selector.fit(design.X, design.y)


def set_fitted(estimator: Any, coef: np.ndarray, intercept: np.ndarray, classes: Any) -> Any:
    """``estimator`` (a Lasso or L1LogisticRegression) made fitted with these coefficients.

    ``coef`` is (n_outputs, n_features); a regression has one output. Its predictions are then
    those of a fit that found these coefficients: ``predict`` is the estimator's own.
    """
    coef = np.asarray(coef, dtype=np.float64)
    intercept = np.asarray(intercept, dtype=np.float64)
    if classes is None:
        estimator.coef_, estimator.intercept_ = coef[0].copy(), float(intercept[0])
    else:
        estimator.classes_ = np.asarray(classes)
        estimator.coef_, estimator.intercept_ = coef.copy(), intercept.copy()
    estimator.n_features_in_ = coef.shape[1]
    return estimator


def summarize_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """One line per distinct warning, with how many times it was raised."""
    counts: dict[str, int] = {}
    for item in caught:
        text = str(item.message).strip().splitlines()
        line = f"{item.category.__name__}: {text[0] if text else ''}"
        counts[line] = counts.get(line, 0) + 1
    return [line if n == 1 else f"{line} ({n} times)" for line, n in counts.items()]
