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
