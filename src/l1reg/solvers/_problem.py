"""What the problems of the coordinate-descent solver share: the interface ``solve`` reads.

A problem is one datafit on one data set, prepared once (centering, weighting, column norms)
and reused along a path; its state (``init_state``) is a dict of arrays that the compiled loops
update in place. :class:`Problem` names what :func:`.coordinate_descent.solve` calls;
``_quadratic.py`` and ``_logistic.py`` fill it in.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Any

import numpy as np
import scipy.sparse as sp


@functools.cache
def compiled(datafit: str) -> ModuleType:
    """The compiled loops ``_cd_<datafit>`` ("common", "quadratic", "gram", "logistic").

    Imported at the first problem, not with this module: they import numba (a second or more).
    """
    return importlib.import_module(f"._cd_{datafit}", __package__)


class Problem:
    """A datafit on a data set, in the units of its compiled loops.

    Attributes: ``n_samples``, ``n_features``, ``fit_intercept``, ``dtype``; ``curvature``, per
    feature, a bound of the datafit's second derivative along it (0 for a column that carries
    no information, whose coefficient is 0); ``features``, those with ``curvature > 0``.

    Methods a problem defines (``state`` from ``init_state``, ``features`` an int64 array):

    - ``grad_at_zero()``: minus the gradient of the datafit at ``w = 0`` (intercept fitted);
    - ``lam(alpha, weights)``, ``tol_abs(tol)``: the per-feature thresholds and the stopping
      tolerance in the loops' units; ``to_objective_units(gap)`` the other way;
    - ``correlations(state, features, out)``: minus the gradient over ``features``;
    - ``gap(state, lam, positive, features, corr)``: ``(duality gap, kappa)`` over ``features``;
    - ``prepare_gap(state)``: make the intercept optimal before a gap is read;
    - ``set_zero(state, j)``, ``inner(state, lam, positive, ws, max_epochs, tol_in,
      anderson) -> (epochs, gap)``, ``intercept(state)``;
    - for the copies of a column (``_ties.py``): ``tie_design()`` (the columns as the loops read
      them, and the intercept's direction in them), ``tie_block(features)`` (their inner
      products, the intercept's column taken out) and ``move_weight(state, source, target,
      factor)`` (``w_t += factor * w_s``, ``w_s = 0``, the fit unchanged).
    """

    n_samples: int
    n_features: int
    fit_intercept: bool
    dtype: np.dtype
    curvature: np.ndarray
    features: np.ndarray
    _grad_at_zero: np.ndarray | None = None  # computed at the first alpha_max

    def __init__(self, X: Any, fit_intercept: bool) -> None:
        self.n_samples, self.n_features = X.shape
        self.fit_intercept = fit_intercept
        self.dtype = X.dtype

    def grad_at_zero(self) -> np.ndarray:
        raise NotImplementedError

    def alpha_max(self, weights=None, positive=False) -> float:
        """The smallest ``alpha`` whose solution is ``w = 0`` (intercept fitted).

        ``max_j grad_j / c_j`` over the penalized features (``c_j > 0``), with ``grad`` minus
        the gradient at ``w = 0`` (its absolute value unless ``positive``). Exact when every
        feature is penalized; with unpenalized features it is the value before they are fitted.
        """
        if self._grad_at_zero is None:
            self._grad_at_zero = self.grad_at_zero()
        c = penalty_weights(weights, self.n_features)
        values = self._grad_at_zero if positive else np.abs(self._grad_at_zero)
        penalized = c > 0
        if not penalized.any():
            return 0.0
        return max(float(np.max(values[penalized] / c[penalized])), 0.0)


def penalty_weights(weights, n_features) -> np.ndarray:
    """The ``c_j`` of ``alpha * sum_j c_j |w_j|`` as float64 (None: all ones)."""
    if weights is None:
        return np.ones(n_features)
    return np.asarray(weights, dtype=np.float64)


class Design:
    """The design matrix as the compiled loops read it: dense Fortran or CSC arrays."""

    def __init__(self, X: Any) -> None:
        self.is_sparse = sp.issparse(X)
        if self.is_sparse:
            csc = X.tocsc()
            if not csc.has_sorted_indices:
                csc = csc.sorted_indices()
            self.data = csc.data
            self.indices = csc.indices.astype(np.int64)
            self.indptr = csc.indptr.astype(np.int64)
            # A Fortran-ordered placeholder keeps one compiled version per dtype.
            self.dense = np.zeros((2, 2), dtype=self.data.dtype, order="F")
            # X^T as CSR (no copy): SciPy's product is 2-3x faster than the compiled loop over
            # all columns (LLVM vectorises that loop's gathers, slow on some CPUs).
            self.transposed = sp.csr_matrix(
                (csc.data, csc.indices, csc.indptr), shape=(X.shape[1], X.shape[0])
            )
        else:
            self.dense = X
            self.data = np.empty(0, dtype=X.dtype)
            self.indices = np.empty(0, dtype=np.int64)
            self.indptr = np.empty(0, dtype=np.int64)

    @property
    def args(self):
        return (self.dense, self.data, self.indices, self.indptr, self.is_sparse)


def as_fortran(X: np.ndarray) -> np.ndarray:
    return X if X.flags.f_contiguous else np.asfortranarray(X)
