"""Cross-validation over a path of alphas: the one template of ``LassoCV`` and
``L1LogisticRegressionCV``.

A CV estimator says how to build its problems (one per binary target: one for the Lasso and for two
classes, one per class for one-vs-rest) on all rows or on a training fold, and how to score a
held-out fold; the template runs the folds and the path on all data, picks ``alpha_`` (least mean
error) and ``alpha_1se_`` (glmnet's one-standard-error rule), and reads the fit at ``alpha_`` from
the path on all data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import is_classifier

from ._base import alpha_grid, linear_predict, solve_path, warn_path_failures
from ._data import fit_method

__all__ = ["CVData", "CrossValidatedPath", "one_standard_error_alpha", "run_units"]


class CVData(NamedTuple):
    """The checked input of a CV fit."""

    X: Any
    y: np.ndarray  # as given (labels for a classifier)
    targets: list[np.ndarray]  # one target per problem
    sample_weight: np.ndarray | None
    weights: np.ndarray | None  # penalty weights
    classes: np.ndarray | None  # a classifier's


class CrossValidatedPath:
    """``fit`` of a cross-validated linear model; a subclass provides:

    - ``_checked_input(X, y, sample_weight) -> CVData`` (every check, before any work);
    - ``_problems(data) -> problems(rows)``: ``rows`` None for all the data, else a training
      fold's row indices; returns one solver problem per target;
    - ``_held_out_error(target, scores, weights)``: a test fold's error of each column of
      ``scores`` (one column per alpha);
    - ``_path_type``: the named tuple of a path (``LassoPath``, ``LogisticPath``);
    - ``_errors_name``: the attribute holding the errors (``mse_path_``, ``loss_path_``);
    - ``_one_target``: True when the fitted attributes are those of one target (the Lasso).
    """

    _path_type: ClassVar[type]
    _errors_name: ClassVar[str]
    _one_target: ClassVar[bool] = False

    @fit_method
    def fit(self, X: Any, y: Any, sample_weight: Any = None):
        """Cross-validate the path, then fit on all data; ``sample_weight`` as repeated rows."""
        data = self._checked_input(X, y, sample_weight)
        owner = type(self).__name__
        from sklearn.model_selection import check_cv  # lazy: a 70 ms import

        splitter = check_cv(self.cv, data.y, classifier=is_classifier(self))
        folds = list(splitter.split(data.X, data.y))
        problems = self._problems(data)
        full = problems(None)
        alpha_max = max(problem.alpha_max(data.weights, self.positive) for problem in full)
        alphas = alpha_grid(alpha_max, self.alphas, self.eps)
        options = {
            "weights": data.weights,
            "positive": self.positive,
            "tol": self.tol,
            "max_iter": self.max_iter,
            "intercept_dtype": np.float64,
        }

        def fold_errors(train: np.ndarray, test: np.ndarray):
            total = np.zeros(alphas.shape[0])
            support = np.zeros((data.X.shape[1], alphas.shape[0]), dtype=bool)
            failures = []
            weights = _held_out_weights(data.sample_weight, test)
            for target, problem in zip(data.targets, problems(train), strict=True):
                path, path_failures = solve_path(problem, alphas, self._path_type, **options)
                failures += path_failures
                scores = linear_predict(data.X[test], path.coefs.T, path.intercepts)
                total += self._held_out_error(target[test], scores, weights)
                support |= path.coefs != 0
            return total, support, failures

        def full_paths():
            return [solve_path(problem, alphas, self._path_type, **options) for problem in full]

        results = run_units(
            [*(lambda tr=tr, te=te: fold_errors(tr, te) for tr, te in folds), full_paths],
            self.n_jobs,
            self.callback,
        )
        errors = np.column_stack([fold for fold, _, _ in results[:-1]])
        # The fraction of folds whose fit keeps each feature (for any class), at each alpha.
        frequency = np.mean([support for _, support, _ in results[:-1]], axis=0)
        paths = [path for path, _ in results[-1]]
        failures = [f for _, _, fold_failures in results[:-1] for f in fold_failures]
        failures += [f for _, path_failures in results[-1] for f in path_failures]
        warn_path_failures(owner, failures, self.max_iter)
        best, one_se = one_standard_error_alpha(alphas, errors)
        self._store(data, alphas, errors, paths, best, one_se)
        self.selection_frequency_path_ = frequency
        self.selection_frequency_ = frequency[:, best].copy()
        return self

    def _store(self, data: CVData, alphas, errors, paths: list, best: int, one_se: int):
        coef_path = np.stack([path.coefs for path in paths])
        intercept_path = np.stack([path.intercepts for path in paths])
        n_iter = np.array([path.n_iter[best] for path in paths])
        gaps = np.array([path.dual_gaps[best] for path in paths])
        if data.classes is not None:
            self.classes_ = data.classes
        self.alphas_ = alphas
        setattr(self, self._errors_name, errors)
        self.alpha_ = float(alphas[best])
        self.alpha_1se_ = float(alphas[one_se])
        if self._one_target:
            self.coef_path_, self.intercept_path_ = coef_path[0], intercept_path[0]
            self.coef_ = coef_path[0, :, best].copy()
            self.intercept_ = float(intercept_path[0, best])
            self.dual_gap_, self.n_iter_ = float(gaps[0]), int(n_iter[0])
        else:
            self.coef_path_, self.intercept_path_ = coef_path, intercept_path
            self.coef_ = coef_path[:, :, best].copy()
            self.intercept_ = intercept_path[:, best].astype(data.X.dtype)
            self.dual_gap_, self.n_iter_ = gaps, n_iter


def _held_out_weights(sample_weight: np.ndarray | None, test: np.ndarray) -> np.ndarray | None:
    """The sample weights of a test fold for averaging its errors; None for none or all zero."""
    if sample_weight is None:
        return None
    weights = sample_weight[test]
    return None if weights.sum() == 0 else weights


def one_standard_error_alpha(alphas: np.ndarray, errors: np.ndarray) -> tuple[int, int]:
    """(index of the alpha of least mean CV error, index of the largest alpha within one SE).

    ``errors`` is (n_alphas, n_folds); the standard error of the best mean is the standard
    deviation over folds (ddof=1) divided by sqrt(n_folds), as glmnet's ``lambda.1se``.
    """
    mean = errors.mean(axis=1)
    best = int(np.argmin(mean))
    n_folds = errors.shape[1]
    se = errors[best].std(ddof=1) / np.sqrt(n_folds) if n_folds > 1 else 0.0
    within = np.flatnonzero(mean <= mean[best] + se)
    # alphas are decreasing: the largest alpha within one SE has the smallest index.
    return best, int(within[np.argmax(alphas[within])])


def run_units(
    tasks: list[Callable[[], Any]], n_jobs: int | None, callback: Callable[[int, int], Any] | None
) -> list[Any]:
    """Run the zero-argument ``tasks`` (in threads: the compiled loops release the GIL).

    Results come back in the order of ``tasks``; ``callback(n_done, n_total)`` is called in this
    process each time one finishes.
    """
    total = len(tasks)
    results: list[Any] = [None] * total
    if n_jobs is None or n_jobs == 1:
        for i, task in enumerate(tasks):
            results[i] = task()
            if callback is not None:
                callback(i + 1, total)
        return results

    def indexed(i: int, task: Callable[[], Any]) -> tuple[int, Any]:
        return i, task()

    parallel = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator_unordered")
    for done, (i, value) in enumerate(
        parallel(delayed(indexed)(i, t) for i, t in enumerate(tasks))
    ):
        results[i] = value
        if callback is not None:
            callback(done + 1, total)
    return results
