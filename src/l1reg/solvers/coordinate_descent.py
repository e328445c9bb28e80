r"""Working-set coordinate descent with gap-safe screening and Anderson extrapolation.

The algorithm, for one ``alpha`` (the outer loop is Python, the loops over samples are compiled):

1. compute the gradient over every feature still in play, a dual point (the residual scaled into
   the dual constraint set) and the duality gap; stop when the gap is below ``tol`` times the
   objective at ``w = 0``, once at least one round of steps 3-4 has run (a warm start that
   already meets ``tol`` is still improved: scikit-learn too checks the gap after an epoch);
2. gap-safe screening: the dual optimum lies in a ball of radius ``sqrt(2 gap / mu)`` around the
   dual point (``mu``: the strong concavity of the dual), so a feature with
   ``|x_j . theta| + radius * ||x_j|| < alpha c_j`` has a zero coefficient at the optimum and leaves
   the problem for good (for this ``alpha``);
3. working set: the features with a nonzero coefficient plus those that violate the optimality
   conditions the most, twice as many as the support (at least 10);
4. coordinate descent on the working set, with an Anderson extrapolation of the last 5 iterates
   every 5 epochs (kept when it lowers the objective), until the working set's own gap is below
   0.3 times the outer gap, or below half the tolerance when the working set holds every
   feature that violates the optimality conditions (no restart per factor 0.3); back to 1.
   For a dense Lasso, once the epochs have cost as much as the inner products of the working
   set's columns, the working set is solved from that Gram matrix (an epoch then costs
   ``|ws|`` per moving coefficient instead of ``n_samples`` per feature); the products are kept
   for the next working sets and the next alphas of a path.

``max_iter`` caps the epochs (passes over the working set) summed over the outer iterations.
Numba is imported when the first problem is built, not when this module is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = [
    "GramQuadraticProblem",
    "LogisticProblem",
    "QuadraticProblem",
    "SharedGram",
    "SolveResult",
    "quadratic_problem",
    "solve",
]

_MIN_WS = 10
# Working sets from this size up are solved from the Gram matrix of their columns (dense X).
_GRAM_MIN_WS = 64
# Columns whose inner products a path keeps (memory: 8 bytes times this squared).
_GRAM_COLUMNS = 2048
# How much faster a flop of the Gram columns' products runs than a flop of an epoch from X
# (dense 500x5000, 657 columns: 20 against 4.4 GFMA/s; contiguous columns against a loop of dot
# products and updates that waits on each coordinate's step).
_GRAM_FLOP_SPEED = 4


def _kernels():
    from . import _cd_kernels

    return _cd_kernels


@dataclass
class SolveResult:
    coef: np.ndarray
    intercept: float
    gap: float  # in the units of the objective (Lasso: 1/(2n) scaling)
    n_iter: int
    converged: bool
    tol_abs: float


class _Design:
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


def _as_fortran(X: np.ndarray) -> np.ndarray:
    return X if X.flags.f_contiguous else np.asfortranarray(X)


class _ColumnGram:
    """Inner products of the columns met so far (dense X), grown as new ones are asked for.

    Built for the working sets of one path: they grow slowly from one alpha to the next, so a
    new column costs its products with the columns already stored, not a whole Gram matrix.
    Computed by the compiled loops (no BLAS call: its threads cost more than they save on a
    loaded machine), in float64.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, max_columns: int) -> None:
        self.X = X
        self.y = y
        self.max_columns = max_columns
        self.pos = np.full(X.shape[1], -1, dtype=np.int64)
        self.order = np.empty(0, dtype=np.int64)  # the feature at each position
        self.size = 0
        self.gram = np.empty((0, 0), order="F")
        self.cy = np.empty(0)

    def block(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``X_S^T X_S`` (C order) and ``X_S^T y`` for ``S = features``."""
        new = features[self.pos[features] < 0]
        if new.shape[0]:
            if self.size + new.shape[0] > self.max_columns:
                self.pos[:] = -1
                self.size = 0
                new = features
            self._grow(new)
        idx = self.pos[features]
        block = np.empty((idx.shape[0], idx.shape[0]))
        _kernels().gather_block(self.gram, idx, block)
        return block, self.cy[idx]

    def _grow(self, new: np.ndarray) -> None:
        size, end = self.size, self.size + new.shape[0]
        capacity = self.gram.shape[0]
        if end > capacity:
            capacity = min(max(2 * capacity, end, 64), self.max_columns)
            gram = np.empty((capacity, capacity), order="F")
            gram[:size, :size] = self.gram[:size, :size]
            cy = np.empty(capacity)
            cy[:size] = self.cy[:size]
            order = np.empty(capacity, dtype=np.int64)
            order[:size] = self.order[:size]
            self.gram, self.cy, self.order = gram, cy, order
        self.order[size:end] = new
        self.pos[new] = np.arange(size, end)
        _kernels().gram_extend(self.X, self.y, self.order, size, end, self.gram, self.cy)
        self.size = end


class QuadraticProblem:
    r"""A Lasso problem ``1/(2S) sum_i s_i (y_i - x_i w - b)^2`` ready for the compiled loops.

    Built once per data set and reused along a path: the centering, weighting and column norms
    are computed here. ``X`` is never modified (a dense ``X`` is copied when centered, weighted
    or not in Fortran order; a sparse one is never densified).
    """

    datafit = "quadratic"

    def __init__(self, X: Any, y: np.ndarray, *, sample_weight=None, fit_intercept=True) -> None:
        K = _kernels()
        n, p = X.shape
        self.n_samples, self.n_features = n, p
        self.fit_intercept = fit_intercept
        y = np.asarray(y, dtype=np.float64)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=np.float64)
            sw = sw * (n / sw.sum())  # weights summing to n: the 1/(2n) scaling below holds
            sqrt_sw = np.sqrt(sw)
        else:
            sw = sqrt_sw = None
        if fit_intercept:
            self.y_offset = float(np.average(y, weights=sw))
        else:
            self.y_offset = 0.0
        y_work = y - self.y_offset
        if sqrt_sw is not None:
            y_work = y_work * sqrt_sw
        self.y = y_work
        self.center = False
        self.qq = float(n)
        if sp.issparse(X):
            Xw = X if sqrt_sw is None else sp.csc_matrix(X.multiply(sqrt_sw[:, None]))
            design = _Design(Xw)
            raw2 = np.empty(p)
            K.weighted_column_norms2(*design.args, np.empty(0), p, raw2)
            if fit_intercept:
                colsum = np.asarray(X.T @ (sw if sw is not None else np.ones(n))).ravel()
                self.x_offset = colsum / n
                self.center = True
                self.q = sqrt_sw if sqrt_sw is not None else np.ones(n)
                self.colq = colsum  # q^T (D X)_j = sum_i s_i X_ij
                norms2 = raw2 - n * self.x_offset**2
                constant = norms2 <= 1e-10 * raw2
            else:
                self.x_offset = np.zeros(p)
                self.q = np.ones(n)
                self.colq = np.zeros(p)
                norms2 = raw2
                constant = norms2 <= 0
        else:
            eps = np.finfo(X.dtype).eps
            if fit_intercept:
                self.x_offset = np.average(X, axis=0, weights=sw).astype(np.float64)
            else:
                self.x_offset = np.zeros(p)
            norms2 = np.empty(p)
            if fit_intercept or sqrt_sw is not None or not X.flags.f_contiguous:
                # one pass: centered, weighted, in Fortran order, and the column norms
                X_work = np.empty((n, p), dtype=X.dtype, order="F")
                scale = np.empty(0) if sqrt_sw is None else sqrt_sw
                K.centered_fortran_copy(
                    X, self.x_offset.astype(X.dtype), scale.astype(X.dtype), X_work, norms2
                )
            else:
                X_work = X
            design = _Design(X_work)
            if X_work is X:
                K.weighted_column_norms2(*design.args, np.empty(0), p, norms2)
            self.q = np.ones(0)
            self.colq = np.zeros(p)
            raw2 = norms2 + n * self.x_offset**2
            constant = norms2 <= (100 * eps) ** 2 * raw2
        norms2 = np.where(constant, 0.0, norms2)
        self.design = design
        self.m = self.x_offset if self.center else np.zeros(p)
        self.norms2 = norms2
        self.curvature = norms2
        self.features = np.flatnonzero(norms2 > 0).astype(np.int64)
        self.objective_at_zero = 0.5 * float(np.sum(self.y * self.y)) / n
        # (numpy sums, not BLAS dots: a BLAS call wakes its threads, milliseconds on a busy CPU)
        self.q_y = float(np.sum(self.q * self.y)) if self.center else 0.0
        self.dtype = X.dtype

    def grad_at_zero(self) -> np.ndarray:
        """``X_work^T y_work / n``: minus the gradient at ``w = 0`` (intercept fitted)."""
        out = np.zeros(self.n_features)
        corr = np.empty(self.features.shape[0])
        qr = self.q_y
        self._correlations(self.y, qr, self.features, corr)
        out[self.features] = corr
        return out / self.n_samples

    def alpha_max(self, weights=None, positive=False) -> float:
        return _alpha_max(self.grad_at_zero(), weights, positive)

    # -- state: (w, r, qr) ------------------------------------------------------------------
    def init_state(self, coef=None):
        w = np.zeros(self.n_features) if coef is None else np.array(coef, dtype=np.float64)
        r = self.y.copy()
        qr_box = np.array([self.q_y])
        if coef is not None:
            K = _kernels()
            nonzero = np.flatnonzero(w)
            w_target = w.copy()
            w[:] = 0.0
            for j in nonzero:
                K.quad_set_coordinate(
                    j, w_target[j], *self.design.args, self.center, self.colq, w, r, qr_box
                )
        return {"w": w, "r": r, "qr": qr_box}

    def lam(self, alpha, weights):
        return self.n_samples * alpha * _penalty_weights(weights, self.n_features)

    def tol_abs(self, tol):
        return tol * self.objective_at_zero * self.n_samples

    def correlations(self, state, features, out):
        self._correlations(state["r"], state["qr"][0], features, out)

    def _correlations(self, r, qr, features, out):
        """``out = (centered X_S)^T r_true`` for ``S = features``."""
        if self.design.is_sparse and 2 * features.shape[0] >= self.n_features:
            np.take(self.design.transposed @ r, features, out=out)
            if self.center:
                out -= self.m[features] * qr
        else:
            _kernels().quad_correlations(
                *self.design.args, self.center, self.m, qr, r, features, out
            )

    def gap(self, state, lam, positive, features, corr):
        gap, _, kappa = _kernels().quad_gap(
            self.y,
            state["r"],
            state["qr"][0],
            self.qq,
            self.center,
            self.m,
            state["w"],
            lam,
            positive,
            features,
            corr,
            self.curvature,
        )
        return gap, kappa

    def set_zero(self, state, j):
        _kernels().quad_set_coordinate(
            j, 0.0, *self.design.args, self.center, self.colq, state["w"], state["r"], state["qr"]
        )

    def inner(self, state, lam, positive, ws, max_epochs, tol_in, anderson):
        """Coordinate descent on ``ws``: from ``X``, then from the Gram matrix of its columns.

        Rent or buy (dense ``X``): epochs run from ``X`` until they have cost what the missing
        columns of the Gram matrix cost (``state["x_cost"]`` counts what every epoch cost, or
        would have cost, reading ``X``, less what the columns bought so far cost); the rest of
        the epochs, here and at the next working sets of a path, run from those columns. Never
        more than about twice the cheaper choice.
        """
        epoch_cost = ws.shape[0] * self.n_samples
        price = self._gram_price(state, ws)
        spent = state.get("x_cost", 0)
        ran = 0
        if price is None or price > spent:
            limit = (
                max_epochs if price is None else min(max_epochs, -(-(price - spent) // epoch_cost))
            )
            ran, gap = _kernels().quad_inner(
                *self.design.args,
                self.center,
                self.m,
                self.colq,
                self.qq,
                self.y,
                state["w"],
                state["r"],
                state["qr"],
                self.norms2,
                lam,
                positive,
                ws,
                int(limit),
                tol_in,
                anderson,
            )
            spent += ran * epoch_cost
            if price is None or gap <= tol_in or ran >= max_epochs:
                if not self.design.is_sparse:
                    state["x_cost"] = spent
                return ran, gap
        more, gap = self._gram_inner(state, lam, positive, ws, max_epochs - ran, tol_in, anderson)
        state["x_cost"] = spent - price + more * epoch_cost
        return ran + more, gap

    def _gram_price(self, state, ws) -> float | None:
        """What the Gram columns that ``ws`` lacks cost, in flops of epochs from ``X``.

        None where the working set is not solved from Gram columns (sparse ``X``, too small or
        too large a working set). Columns already stored cost nothing; a new one costs its
        products with the stored ones and the new ones (a symmetric block: half), each
        ``_GRAM_FLOP_SPEED`` times cheaper than a flop of an epoch.
        """
        n_ws = ws.shape[0]
        if self.design.is_sparse or not _GRAM_MIN_WS <= n_ws <= _GRAM_COLUMNS:
            return None
        cache = state.get("gram")
        n_new = n_ws if cache is None else int(np.count_nonzero(cache.pos[ws] < 0))
        stored = 0 if cache is None or cache.size + n_new > _GRAM_COLUMNS else cache.size
        if stored == 0:
            n_new = n_ws
        return n_new * (stored + 0.5 * n_new) * self.n_samples / _GRAM_FLOP_SPEED

    def _gram_cache(self, state) -> _ColumnGram:
        if "gram" not in state:
            state["gram"] = _ColumnGram(self.design.dense, self.y, _GRAM_COLUMNS)
        return state["gram"]

    def _gram_inner(self, state, lam, positive, ws, max_epochs, tol_in, anderson):
        """``inner`` on the Gram matrix of the working set's columns; moves ``r`` at the end."""
        K = _kernels()
        gram, cy = self._gram_cache(state).block(ws)
        w_ws = state["w"][ws]
        g = np.empty(ws.shape[0])
        r = state["r"]
        K.quad_correlations(*self.design.args, False, self.m, 0.0, r, ws, g)
        rr = float(np.sum(r * r))
        yr = float(np.sum(self.y * r))
        ran, gap = K.local_gram_inner(
            gram, cy, w_ws, g, rr, yr, lam[ws], positive, max_epochs, tol_in, anderson
        )
        K.quad_set_coordinates(
            *self.design.args, False, self.colq, state["w"], r, state["qr"], ws, w_ws
        )
        return ran, gap

    def prepare_gap(self, state):
        pass

    def intercept(self, state) -> float:
        if not self.fit_intercept:
            return 0.0
        w = state["w"]
        support = np.flatnonzero(w)
        return self.y_offset - float(np.sum(self.x_offset[support] * w[support]))

    def to_objective_units(self, gap):
        return gap / self.n_samples


class GramQuadraticProblem(QuadraticProblem):
    """A dense Lasso problem solved from its Gram matrix ``G = X^T X`` (centered, weighted).

    A coordinate step costs O(n_features) instead of O(n_samples): the better choice when there
    are more samples than features and many fits share the matrix (a path, a CV fold). Building
    ``G`` costs one O(n p^2) product (BLAS), accumulated in float64.
    """

    def __init__(self, X: Any, y: np.ndarray, *, sample_weight=None, fit_intercept=True) -> None:
        if sp.issparse(X):
            raise TypeError("GramQuadraticProblem needs a dense X.")
        super().__init__(X, y, sample_weight=sample_weight, fit_intercept=fit_intercept)
        X_work = self.design.dense
        if X_work.dtype != np.float64:
            X_work = X_work.astype(np.float64)
        self.gram = np.asfortranarray(X_work.T @ X_work)
        self.c = X_work.T @ self.y
        self.yy = float(self.y @ self.y)
        self.design = None  # the compiled loops read G, never X

    @classmethod
    def from_gram(cls, gram, c, yy, *, x_offset, y_offset, n_samples, fit_intercept, dtype):
        """A problem from its centered, weighted Gram matrix, ``X^T y`` and ``||y||^2``.

        The weights must be normalised to sum to ``n_samples`` (the ``1/(2n)`` scaling).
        """
        self = cls.__new__(cls)
        p = gram.shape[0]
        self.n_samples, self.n_features = n_samples, p
        self.fit_intercept = fit_intercept
        self.x_offset = np.asarray(x_offset, dtype=np.float64)
        self.y_offset = float(y_offset)
        self.center = False
        self.qq = float(n_samples)
        self.m = np.zeros(p)
        self.q = np.ones(0)
        self.colq = np.zeros(p)
        norms2 = np.maximum(np.diag(gram).copy(), 0.0)
        raw2 = norms2 + n_samples * self.x_offset**2
        eps = np.finfo(dtype).eps
        norms2[norms2 <= (100 * eps) ** 2 * raw2] = 0.0
        self.norms2 = self.curvature = norms2
        self.features = np.flatnonzero(norms2 > 0).astype(np.int64)
        self.gram = np.asfortranarray(gram)
        self.c = np.asarray(c, dtype=np.float64)
        self.yy = float(yy)
        self.y = None
        self.q_y = 0.0
        self.objective_at_zero = 0.5 * self.yy / n_samples
        self.dtype = np.dtype(dtype)
        self.design = None
        return self

    def grad_at_zero(self) -> np.ndarray:
        out = np.zeros(self.n_features)
        out[self.features] = self.c[self.features]
        return out / self.n_samples

    def init_state(self, coef=None):
        w = np.zeros(self.n_features) if coef is None else np.array(coef, dtype=np.float64)
        w[self.norms2 == 0] = 0.0
        return {"w": w, "q": self.gram @ w}

    def correlations(self, state, features, out):
        out[:] = self.c[features] - state["q"][features]

    def gap(self, state, lam, positive, features, corr):
        return _kernels().gram_gap(
            self.yy, self.c, state["q"], state["w"], lam, positive, features, self.curvature
        )

    def set_zero(self, state, j):
        w = state["w"]
        if w[j] != 0.0:
            state["q"] -= w[j] * self.gram[:, j]
            w[j] = 0.0

    def inner(self, state, lam, positive, ws, max_epochs, tol_in, anderson):
        return _kernels().gram_inner(
            self.gram,
            self.c,
            self.yy,
            state["w"],
            state["q"],
            self.norms2,
            lam,
            positive,
            ws,
            max_epochs,
            tol_in,
            anderson,
        )


class SharedGram:
    r"""Gram matrices of the training folds of one data set, at the price of about two.

    The data are centered once (weighted mean of all rows) and ``S = Z^T Z`` is computed once
    (``Z``: centered rows times sqrt of their weights). A training fold's Gram matrix is
    ``S - Z_test^T Z_test`` re-centered at the fold's own mean,

    .. math:: G_{train} = S_{train} - W_{train}\,\mu\mu^\top,

    with :math:`\mu` the fold's weighted mean of ``Z / sqrt(s)`` and :math:`W_{train}` its
    total weight; :math:`\mu` is small (the data are already centered), so nothing cancels.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, *, sample_weight=None, fit_intercept=True):
        n, _ = X.shape
        self.n = n
        self.dtype = X.dtype
        self.fit_intercept = fit_intercept
        self.sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
        self.sqrt_sw = np.sqrt(self.sw)
        self.y = np.asarray(y, dtype=np.float64)
        if fit_intercept:
            self.x_mean = np.average(X, axis=0, weights=self.sw).astype(np.float64)
        else:
            self.x_mean = np.zeros(X.shape[1])
        Z = np.empty(X.shape, dtype=np.float64, order="F")
        np.subtract(X, self.x_mean, out=Z)
        if sample_weight is not None:
            Z *= self.sqrt_sw[:, None]
        self.Z = Z
        self.S = Z.T @ Z

    def problem(self, rows: np.ndarray | None = None) -> GramQuadraticProblem:
        """The Lasso problem on ``rows`` (all rows when None)."""
        if rows is None:
            mask = np.ones(self.n, dtype=bool)
            S = self.S
        else:
            mask = np.zeros(self.n, dtype=bool)
            mask[rows] = True
            Z_out = self.Z[~mask]
            S = self.S - Z_out.T @ Z_out
        sw = np.where(mask, self.sw, 0.0)
        total = sw.sum()
        n_rows = int(mask.sum())
        sqrt_in = np.where(mask, self.sqrt_sw, 0.0)
        if self.fit_intercept:
            mu = (self.Z.T @ sqrt_in) / total
            y_offset = float(sw @ self.y) / total
            gram = S - total * np.outer(mu, mu)
        else:
            mu = np.zeros(S.shape[0])
            y_offset = 0.0
            gram = S
        y_in = (self.y - y_offset) * sqrt_in  # zero outside the rows
        c = self.Z.T @ y_in
        scale = n_rows / total  # weights normalised to sum to the number of rows
        return GramQuadraticProblem.from_gram(
            scale * gram,
            scale * c,
            scale * float(y_in @ y_in),
            x_offset=self.x_mean + mu,
            y_offset=y_offset,
            n_samples=n_rows,
            fit_intercept=self.fit_intercept,
            dtype=self.dtype,
        )


def quadratic_problem(
    X: Any, y: np.ndarray, *, sample_weight=None, fit_intercept=True, precompute: bool | str = False
) -> QuadraticProblem:
    """The Lasso problem for ``X``, from the Gram matrix when ``precompute`` says so.

    ``precompute="auto"`` uses the Gram matrix for dense ``X`` with more samples than features
    (the choice for paths and cross-validation, where many fits share it); sparse ``X`` never
    uses it (the matrix would be dense).
    """
    use_gram = not sp.issparse(X) and (
        precompute is True or (precompute == "auto" and X.shape[0] > X.shape[1])
    )
    problem_class = GramQuadraticProblem if use_gram else QuadraticProblem
    return problem_class(X, y, sample_weight=sample_weight, fit_intercept=fit_intercept)


class LogisticProblem:
    r"""A binary L1 logistic problem ``1/S sum_i s_i log(1 + exp(-y_i (x_i w + b)))``.

    ``y`` is in {-1, 1}; the intercept starts at its best value for ``w = 0``.
    """

    datafit = "logistic"

    def __init__(self, X: Any, y: np.ndarray, *, sample_weight=None, fit_intercept=True) -> None:
        K = _kernels()
        n, p = X.shape
        self.n_samples, self.n_features = n, p
        self.fit_intercept = fit_intercept
        self.y = np.asarray(y, dtype=np.float64)
        if sample_weight is None:
            self.a = np.full(n, 1.0 / n)
        else:
            sw = np.asarray(sample_weight, dtype=np.float64)
            self.a = sw / sw.sum()
        self.design = _Design(X if sp.issparse(X) else _as_fortran(X))
        sq = np.empty(p)
        K.weighted_column_norms2(*self.design.args, self.a, p, sq)
        self.curvature = 0.25 * sq
        self.features = np.flatnonzero(self.curvature > 0).astype(np.int64)
        positive_share = float(self.a @ (self.y > 0))
        if fit_intercept:
            if not 0.0 < positive_share < 1.0:
                raise ValueError(
                    "L1 logistic regression needs samples of both classes with positive weight; "
                    f"got a positive-class weight share of {positive_share}."
                )
            self.b0 = float(np.log(positive_share / (1 - positive_share)))
        else:
            self.b0 = 0.0
        t = -self.y * self.b0
        self.objective_at_zero = float(self.a @ (np.maximum(t, 0) + np.log1p(np.exp(-abs(t)))))
        self.dtype = X.dtype

    def grad_at_zero(self) -> np.ndarray:
        """Minus the gradient at ``w = 0`` with the best intercept."""
        out = np.zeros(self.n_features)
        corr = np.empty(self.features.shape[0])
        z = np.full(self.n_samples, self.b0)
        _kernels().logistic_correlations(*self.design.args, self.y, self.a, z, self.features, corr)
        out[self.features] = corr
        return out

    def alpha_max(self, weights=None, positive=False) -> float:
        return _alpha_max(self.grad_at_zero(), weights, positive)

    def init_state(self, coef=None, intercept=None):
        w = np.zeros(self.n_features) if coef is None else np.array(coef, dtype=np.float64)
        b = self.b0 if intercept is None else float(intercept)
        if not self.fit_intercept:
            b = 0.0
        if self.design.is_sparse:
            z = np.full(self.n_samples, b)
            nonzero = np.flatnonzero(w)
            for j in nonzero:
                _kernels().col_axpy(j, *self.design.args, w[j], z)
        else:
            z = self.design.dense @ w + b
            z = np.asarray(z, dtype=np.float64)
        return {"w": w, "z": z, "b": np.array([b])}

    def lam(self, alpha, weights):
        return alpha * _penalty_weights(weights, self.n_features)

    def tol_abs(self, tol):
        return tol * self.objective_at_zero

    def correlations(self, state, features, out):
        _kernels().logistic_correlations(
            *self.design.args, self.y, self.a, state["z"], features, out
        )

    def prepare_gap(self, state):
        if self.fit_intercept:
            _kernels().logistic_newton_intercept(self.y, self.a, state["z"], state["b"], 30)

    def gap(self, state, lam, positive, features, corr):
        gap, _ = _kernels().logistic_gap(
            self.y, self.a, state["z"], state["w"], lam, positive, features, corr, self.curvature
        )
        lam_f = lam[features]
        penalized = lam_f > 0
        signed = corr if positive else np.abs(corr)
        ratio = float(np.max(signed[penalized] / lam_f[penalized], initial=0.0))
        return gap, 1.0 if ratio <= 1.0 else 1.0 / ratio

    def set_zero(self, state, j):
        w = state["w"]
        if w[j] != 0.0:
            _kernels().col_axpy(j, *self.design.args, -w[j], state["z"])
            w[j] = 0.0

    def inner(self, state, lam, positive, ws, max_epochs, tol_in, anderson):
        return _kernels().logistic_inner(
            *self.design.args,
            self.y,
            self.a,
            state["w"],
            state["z"],
            state["b"],
            self.fit_intercept,
            self.curvature,
            lam,
            positive,
            ws,
            max_epochs,
            tol_in,
            anderson,
        )

    def intercept(self, state) -> float:
        return float(state["b"][0]) if self.fit_intercept else 0.0

    def to_objective_units(self, gap):
        return gap


def _penalty_weights(weights, n_features) -> np.ndarray:
    if weights is None:
        return np.ones(n_features)
    return np.asarray(weights, dtype=np.float64)


def _alpha_max(grad_at_zero, weights, positive) -> float:
    c = _penalty_weights(weights, grad_at_zero.shape[0])
    values = grad_at_zero if positive else np.abs(grad_at_zero)
    penalized = c > 0
    if not penalized.any():
        return 0.0
    return max(float(np.max(values[penalized] / c[penalized])), 0.0)


def _settle(problem, state, lam, positive, unpenalized, tol_abs, budget) -> int:
    """Make the gap valid: epochs over the unpenalized features until their gradient is ~0.

    The dual point of the gap is the scaled residual (or loss gradient). The dual constraint of
    an unpenalized feature is an equality, ``x_u^T theta = 0``, which holds only where that
    feature is optimal given the others; off it, the gap is wrong by an amount of the first
    order in its gradient, and can be negative: with one unpenalized feature correlated with
    others, fits at tol 1e-10 stopped with KKT violations up to 0.25 (Lasso) and 0.14
    (logistic) before this. So they are made optimal first, to ``1e-3 * tol_abs`` of that
    error, or as far as rounding lets the gradient fall (as the intercept of the logistic loss
    is, by ``prepare_gap``). Returns the epochs run (at most ``budget``).
    """
    problem.prepare_gap(state)
    if unpenalized.shape[0] == 0:
        return 0
    corr = np.empty(unpenalized.shape[0])
    # error of the gap ~ |corr_u| / sqrt(2 L_u) * sqrt(2 * objective at 0), in gap units
    bound = 1e-3 * tol_abs / np.sqrt(2.0 * problem.tol_abs(1.0))
    ran = 0
    previous = np.inf
    while True:
        problem.correlations(state, unpenalized, corr)
        w = state["w"][unpenalized]
        # (with ``positive``, one held at 0 by its bound may keep a gradient pointing below it)
        moving = np.where(positive & (w == 0), np.maximum(corr, 0.0), corr)
        worst = float(np.max(np.abs(moving) / np.sqrt(2.0 * problem.curvature[unpenalized])))
        if worst <= bound or worst >= previous or ran >= budget:
            return ran
        previous = worst
        done, _ = problem.inner(state, lam, positive, unpenalized, 1, -np.inf, False)
        ran += done
        problem.prepare_gap(state)


def solve(
    problem,
    alpha: float,
    state: dict,
    *,
    weights=None,
    positive: bool = False,
    tol: float = 1e-4,
    max_iter: int = 1000,
    screening: bool = True,
    anderson: bool = True,
) -> SolveResult:
    """Minimise ``datafit + alpha * sum_j c_j |w_j|`` from ``state`` (updated in place).

    Stops when the duality gap is at most ``tol`` times the objective at ``w = 0``, or after
    ``max_iter`` epochs (then ``converged`` is False; the caller warns).
    """
    lam = problem.lam(alpha, weights)
    tol_abs = problem.tol_abs(tol)
    candidates = problem.features
    w = state["w"]
    # Coefficients of features that carry no information (all-zero or constant columns) are 0.
    # Negative coefficients of a warm start are not feasible when ``positive``.
    for j in np.flatnonzero(w):
        if problem.curvature[j] == 0 or (positive and w[j] < 0):
            problem.set_zero(state, j)
    curvature = problem.curvature
    unpenalized = candidates[lam[candidates] == 0]
    epochs = 0
    gap = np.inf
    converged = False
    while True:
        epochs += _settle(problem, state, lam, positive, unpenalized, tol_abs, max_iter - epochs)
        corr = np.empty(candidates.shape[0])
        problem.correlations(state, candidates, corr)
        gap, kappa = problem.gap(state, lam, positive, candidates, corr)
        # The gap is trusted after one round of coordinate descent, as scikit-learn checks it
        # after an epoch: on a path, the previous alpha's solution often meets ``tol`` at the
        # next alpha already (``tol`` scales with the objective at 0, which dwarfs the objective
        # at small alphas), and returning it unchanged would repeat its error at every step.
        if gap <= tol_abs and (epochs > 0 or candidates.shape[0] == 0):
            converged = True
            break
        if epochs >= max_iter or candidates.shape[0] == 0:
            break
        lam_c = lam[candidates]
        signed = corr if positive else np.abs(corr)
        if screening:
            radius = np.sqrt(2.0 * max(gap, 0.0) * curvature[candidates])
            screened = (kappa * signed + radius < lam_c) & (lam_c > 0)
            if screened.any():
                for j in candidates[screened][w[candidates[screened]] != 0]:
                    problem.set_zero(state, j)
                keep = ~screened
                candidates, corr, lam_c, signed = (
                    candidates[keep],
                    corr[keep],
                    lam_c[keep],
                    signed[keep],
                )
                if candidates.shape[0] == 0:
                    continue  # every feature is certified zero: the next gap is the final one
        w_c = w[candidates]
        violation = np.where(
            w_c == 0,
            np.maximum(signed - lam_c, 0.0),
            np.abs(corr - lam_c * np.sign(w_c)),
        ) / np.sqrt(curvature[candidates])
        forced = (w_c != 0) | (lam_c == 0)
        n_forced = int(forced.sum())
        ws_size = min(max(_MIN_WS, 2 * n_forced), candidates.shape[0])
        score = np.where(forced, np.inf, violation)
        if ws_size < candidates.shape[0]:
            top = np.argpartition(-score, ws_size - 1)[:ws_size]
            top = top[score[top] > 0]
        else:
            top = np.flatnonzero(score > 0)
        if top.shape[0] == 0:
            top = np.arange(min(ws_size, candidates.shape[0]))
        ws = np.sort(candidates[top])
        # When the working set holds every feature that violates the optimality conditions, the
        # next outer check may well find the same set again: solving it only to 0.3 times the gap
        # would restart the inner solver (and its extrapolation) once per factor 0.3. But not to
        # the final tolerance either: its solution moves the correlations of the features outside
        # it, and on dense 500x5000 at alpha_max/100 each of five such sets then took 100-270
        # epochs to reach a tolerance that the next set, with new violators, had to reach again.
        if ws.shape[0] == candidates.shape[0]:
            tol_in = tol_abs
        elif int((score > 0).sum()) <= ws.shape[0]:  # every violator is in the working set
            tol_in = max(0.1 * gap, 0.5 * tol_abs)
        else:
            tol_in = max(0.3 * gap, 0.5 * tol_abs)
        ran, _ = problem.inner(state, lam, positive, ws, max_iter - epochs, tol_in, anderson)
        epochs += ran
    return SolveResult(
        coef=w,
        intercept=problem.intercept(state),
        gap=problem.to_objective_units(gap),
        n_iter=epochs,
        converged=converged,
        tol_abs=problem.to_objective_units(tol_abs),
    )
