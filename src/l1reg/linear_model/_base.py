"""What the L1 linear models share: input checks, the alpha grid, CV bookkeeping, warnings."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.extmath import safe_sparse_dot

from .._validation import invalid_parameter
from ..solvers import solve

__all__ = [
    "alpha_grid",
    "check_penalty_weights",
    "check_sample_weight",
    "one_standard_error_alpha",
    "run_units",
    "warn_not_converged",
]

# Fewer epochs than this never certify a hard problem; more only delay the warning.
DEFAULT_MAX_ITER = 1000


def check_sample_weight(sample_weight: Any, n_samples: int, owner: str) -> np.ndarray | None:
    """``sample_weight`` as float64: ``n_samples`` finite values >= 0 with a positive sum.

    None stays None (every sample weighs the same); a number gives that weight to every sample.
    """
    if sample_weight is None:
        return None
    expected = f"None, a number or an array of {n_samples} finite numbers >= 0 with a positive sum"
    if isinstance(sample_weight, numbers.Real) and not isinstance(sample_weight, bool):
        weights = np.full(n_samples, float(sample_weight))
    else:
        try:
            weights = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                invalid_parameter("sample_weight", owner, expected, sample_weight)
            ) from None
        if weights.ndim != 1 or weights.shape[0] != n_samples:
            raise ValueError(
                invalid_parameter(
                    "sample_weight", owner, expected, f"an array of shape {weights.shape}"
                )
            )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(invalid_parameter("sample_weight", owner, expected, sample_weight))
    if not weights.sum() > 0:
        raise ValueError(
            f"The 'sample_weight' parameter of {owner} must have a positive sum. "
            "Got sample weights that are all zero instead."
        )
    return weights


def check_penalty_weights(weights: Any, n_features: int, owner: str) -> np.ndarray | None:
    """The per-feature penalty weights ``c_j >= 0`` (0: unpenalized) as float64, or None."""
    if weights is None:
        return None
    expected = f"None or an array of {n_features} finite numbers >= 0 (one per feature)"
    array = np.asarray(weights, dtype=np.float64)
    if array.shape != (n_features,):
        raise ValueError(invalid_parameter("weights", owner, expected, f"shape {array.shape}"))
    return array


def alpha_grid(alpha_max: float, alphas: Any, eps: float) -> np.ndarray:
    """``alphas`` itself, sorted decreasing, or a geometric grid of that many values.

    The grid goes from ``alpha_max`` down to ``eps * alpha_max`` (as scikit-learn's). When
    ``alpha_max`` is 0 (a target that no feature explains), every value is the smallest positive
    resolution of float64 and every coefficient is 0.
    """
    if isinstance(alphas, numbers.Integral):
        top = alpha_max if alpha_max > np.finfo(np.float64).resolution else None
        if top is None:
            return np.full(int(alphas), np.finfo(np.float64).resolution)
        if alphas == 1:
            return np.array([top])
        return np.geomspace(top, top * eps, num=int(alphas))
    return np.sort(np.asarray(alphas, dtype=np.float64))[::-1].copy()


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


def warn_not_converged(
    owner: str,
    alphas: list[float],
    gaps: list[float],
    tols: list[float],
    max_iter: int,
    stacklevel: int = 3,
) -> None:
    """One ``ConvergenceWarning`` naming how many fits stopped short and the worst gap reached."""
    if not alphas:
        return
    worst = int(np.argmax(np.asarray(gaps) / np.maximum(np.asarray(tols), 1e-300)))
    how_many = "" if len(alphas) == 1 else f" for {len(alphas)} values of alpha"
    warnings.warn(
        f"{owner} did not converge{how_many} in max_iter={max_iter} epochs: the duality gap "
        f"reached {gaps[worst]:.3e} (alpha={alphas[worst]:.4g}) for a tolerance of "
        f"{tols[worst]:.3e}. Increase max_iter, raise tol, or scale the features.",
        ConvergenceWarning,
        stacklevel=stacklevel,  # the caller of fit (or of the path function)
    )


def solve_path(
    problem: Any,
    alphas: np.ndarray,
    path_type: Callable[..., Any],
    *,
    weights: np.ndarray | None,
    positive: bool,
    tol: float,
    max_iter: int,
    coef_init: np.ndarray | None = None,
    intercept_dtype: Any = None,
) -> tuple[Any, list[tuple[float, float, float]]]:
    """Solve ``problem`` along ``alphas`` (decreasing), each fit warm-started from the previous one.

    The working set of each fit starts from the support of the previous one, so the active set
    grows along the path. Returns ``path_type(alphas, coefs, intercepts, dual_gaps, n_iter)``
    (coefs of shape (n_features, n_alphas), in the problem's dtype; intercepts in
    ``intercept_dtype``, by default that dtype too) and the (alpha, gap, tolerance) of the fits
    that did not converge.
    """
    n_alphas = alphas.shape[0]
    coefs = np.zeros((problem.n_features, n_alphas), dtype=problem.dtype)
    intercepts = np.zeros(n_alphas, dtype=intercept_dtype or problem.dtype)
    gaps = np.zeros(n_alphas)
    n_iter = np.zeros(n_alphas, dtype=np.int64)
    failures = []
    state = problem.init_state(coef_init)
    for k, alpha in enumerate(alphas):
        result = solve(
            problem,
            float(alpha),
            state,
            weights=weights,
            positive=positive,
            tol=tol,
            max_iter=max_iter,
        )
        coefs[:, k] = result.coef
        intercepts[k] = result.intercept
        gaps[k] = result.gap
        n_iter[k] = result.n_iter
        if not result.converged:
            failures.append((float(alpha), result.gap, result.tol_abs))
    return path_type(alphas, coefs, intercepts, gaps, n_iter), failures


def warn_path_failures(
    owner: str, failures: list[tuple[float, float, float]], max_iter: int
) -> None:
    """:func:`warn_not_converged` for the (alpha, gap, tolerance) of :func:`solve_path`."""
    if failures:
        alphas, gaps, tols = (list(column) for column in zip(*failures, strict=True))
        warn_not_converged(owner, alphas, gaps, tols, max_iter, stacklevel=4)


def held_out_weights(sample_weight: np.ndarray | None, test: np.ndarray) -> np.ndarray | None:
    """The sample weights of a test fold for averaging its errors; None for none or all zero."""
    if sample_weight is None:
        return None
    weights = sample_weight[test]
    return None if weights.sum() == 0 else weights


def cross_validate(
    fold_tasks: list[Callable[[], tuple[np.ndarray, list]]],
    full_task: Callable[[], Any],
    n_jobs: int | None,
    callback: Callable[[int, int], Any] | None,
) -> tuple[np.ndarray, list[tuple[float, float, float]], Any]:
    """Run the folds and the fit on all data (:func:`run_units`).

    Each fold task returns (its held-out errors over the alphas, its unconverged fits). Returns
    the errors as (n_alphas, n_folds), the folds' unconverged fits, and the full task's result.
    """
    results = run_units([*fold_tasks, full_task], n_jobs, callback)
    errors = np.column_stack([values for values, _ in results[:-1]])
    failures = [f for _, fold_failures in results[:-1] for f in fold_failures]
    return errors, failures, results[-1]


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


def linear_predict(X: Any, coef: np.ndarray, intercept: Any) -> np.ndarray:
    """``X @ coef.T + intercept`` for dense or sparse ``X``."""
    out = safe_sparse_dot(X, coef.T, dense_output=True)
    return np.asarray(out) + intercept


def is_sparse(X: Any) -> bool:
    return sp.issparse(X)
