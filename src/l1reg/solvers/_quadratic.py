r"""The quadratic datafit (the Lasso) as the coordinate-descent solver reads it.

- :class:`QuadraticProblem`: ``X`` dense or sparse, read by the loops of ``_cd_quadratic``; a
  dense ``X`` buys the Gram matrix of its large working sets' columns (:class:`_ColumnGram`)
  once the epochs have cost as much, and solves them from it (``_cd_gram``);
- :class:`GramQuadraticProblem`: dense data with more samples than features, solved from the
  Gram matrix of the whole problem; :class:`SharedGram` derives those of CV training folds;
- :func:`uses_gram` decides between the two, :func:`quadratic_problem` builds the one chosen.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ._problem import Design, Problem, compiled, penalty_weights

# Working sets from this size up are solved from the Gram matrix of their columns (dense X).
_GRAM_MIN_WS = 64
# Columns whose inner products a path keeps (memory: 8 bytes times this squared).
_GRAM_COLUMNS = 2048
# How much faster a flop of the Gram columns' products runs than a flop of an epoch from X
# (dense 500x5000, 657 columns: 20 against 4.4 GFMA/s; contiguous columns against a loop of dot
# products and updates that waits on each coordinate's step).
_GRAM_FLOP_SPEED = 4


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
        compiled("gram").gather_block(self.gram, idx, block)
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
        compiled("gram").gram_extend(self.X, self.y, self.order, size, end, self.gram, self.cy)
        self.size = end


class QuadraticProblem(Problem):
    r"""A Lasso problem ``1/(2S) sum_i s_i (y_i - x_i w - b)^2`` ready for the compiled loops.

    Built once per data set and reused along a path: the centering, weighting and column norms
    are computed here. ``X`` is never modified (a dense ``X`` is copied when centered, weighted
    or not in Fortran order; a sparse one is never densified).
    """

    datafit = "quadratic"

    def __init__(self, X: Any, y: np.ndarray, *, sample_weight=None, fit_intercept=True) -> None:
        super().__init__(X, fit_intercept)
        common, quad = compiled("common"), compiled("quadratic")
        n, p = X.shape
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
            design = Design(Xw)
            raw2 = np.empty(p)
            common.weighted_column_norms2(*design.args, np.empty(0), p, raw2)
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
                quad.centered_fortran_copy(
                    X, self.x_offset.astype(X.dtype), scale.astype(X.dtype), X_work, norms2
                )
            else:
                X_work = X
            design = Design(X_work)
            if X_work is X:
                common.weighted_column_norms2(*design.args, np.empty(0), p, norms2)
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
        self.y_norm = float(np.sqrt(2.0 * n * self.objective_at_zero))  # ||y|| (tie margins)
        # (numpy sums, not BLAS dots: a BLAS call wakes its threads, milliseconds on a busy CPU)
        self.q_y = float(np.sum(self.q * self.y)) if self.center else 0.0

    def grad_at_zero(self) -> np.ndarray:
        """``X_work^T y_work / n``: minus the gradient at ``w = 0`` (intercept fitted)."""
        out = np.zeros(self.n_features)
        corr = np.empty(self.features.shape[0])
        qr = self.q_y
        self._correlations(self.y, qr, self.features, corr)
        out[self.features] = corr
        return out / self.n_samples

    # -- state: (w, r, qr) ------------------------------------------------------------------
    def init_state(self, coef=None):
        w = np.zeros(self.n_features) if coef is None else np.array(coef, dtype=np.float64)
        r = self.y.copy()
        qr_box = np.array([self.q_y])
        if coef is not None:
            quad = compiled("quadratic")
            nonzero = np.flatnonzero(w)
            w_target = w.copy()
            w[:] = 0.0
            for j in nonzero:
                quad.quad_set_coordinate(
                    j, w_target[j], *self.design.args, self.center, self.colq, w, r, qr_box
                )
        return {"w": w, "r": r, "qr": qr_box}

    def lam(self, alpha, weights):
        return self.n_samples * alpha * penalty_weights(weights, self.n_features)

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
            compiled("quadratic").quad_correlations(
                *self.design.args, self.center, self.m, qr, r, features, out
            )

    def gap(self, state, lam, positive, features, corr):
        return compiled("quadratic").quad_gap(
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

    def set_zero(self, state, j):
        compiled("quadratic").quad_set_coordinate(
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
            ran, gap = compiled("quadratic").quad_inner(
                *self.design.args,
                self.center,
                self.m,
                self.colq,
                self.qq,
                self.y,
                self.y_norm,
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
        quad = compiled("quadratic")
        gram, cy = self._gram_cache(state).block(ws)
        w_ws = state["w"][ws]
        g = np.empty(ws.shape[0])
        r = state["r"]
        quad.quad_correlations(*self.design.args, False, self.m, 0.0, r, ws, g)
        rr = float(np.sum(r * r))
        yr = float(np.sum(self.y * r))
        local = np.arange(ws.shape[0])  # the block is indexed by position in ``ws``
        ran, gap = compiled("gram").gram_inner(
            gram,
            cy,
            w_ws,
            g,
            rr,
            yr,
            self.y_norm,
            lam[ws],
            positive,
            local,
            max_epochs,
            tol_in,
            anderson,
        )
        quad.quad_set_coordinates(
            *self.design.args, False, self.colq, state["w"], r, state["qr"], ws, w_ws
        )
        return ran, gap

    def prepare_gap(self, state):
        pass

    # -- copies of one column (``_ties.py``) --------------------------------------------------
    def tie_design(self):
        """The columns as the loops read them, and the intercept's direction (``q``) in them."""
        return self.design.args, (self.q if self.center else np.empty(0))

    def tie_block(self, features):
        """Inner products of the centered, weighted columns ``features``."""
        if self.design.is_sparse:
            columns = self.design.transposed[features].toarray().T
            if self.center:
                columns -= self.q[:, None] * self.m[features]
        else:
            columns = np.asarray(self.design.dense[:, features], dtype=np.float64)
        return np.einsum("ij,ik->jk", columns, columns)  # (no BLAS call for a few columns)

    def move_weight(self, state, source, target, factor):
        """``w_target += factor * w_source``, ``w_source = 0`` (columns ``x_s = factor x_t``)."""
        w = state["w"]
        value = w[target] + factor * w[source]
        self.set_zero(state, source)
        compiled("quadratic").quad_set_coordinate(
            target, value, *self.design.args, self.center, self.colq, w, state["r"], state["qr"]
        )

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
    ``G`` costs one O(n p^2) product (BLAS), accumulated in float64. The state keeps ``w`` and
    ``g = X^T r = c - G w`` (``c = X^T y``).
    """

    def __init__(self, X: Any, y: np.ndarray, *, sample_weight=None, fit_intercept=True) -> None:
        if sp.issparse(X):
            raise TypeError("GramQuadraticProblem needs a dense X.")
        super().__init__(X, y, sample_weight=sample_weight, fit_intercept=fit_intercept)
        X_work = self.design.dense
        if X_work.dtype != np.float64:
            X_work = X_work.astype(np.float64)
        self.gram = np.ascontiguousarray(X_work.T @ X_work)  # the loops read its rows
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
        self.gram = np.ascontiguousarray(gram)
        self.c = np.asarray(c, dtype=np.float64)
        self.yy = float(yy)
        self.y = None
        self.q_y = 0.0
        self.objective_at_zero = 0.5 * self.yy / n_samples
        self.y_norm = float(np.sqrt(self.yy))
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
        g = self.c - self.gram @ w if coef is not None else self.c.copy()
        return {"w": w, "g": g}

    def correlations(self, state, features, out):
        np.take(state["g"], features, out=out)

    def tie_design(self):
        """``G`` as the design: its columns are parallel where those of ``X`` are."""
        empty = np.empty(0, dtype=np.int64)
        return (self.gram, np.empty(0), empty, empty, False), np.empty(0)

    def tie_block(self, features):
        return self.gram[np.ix_(features, features)]

    def move_weight(self, state, source, target, factor):
        w = state["w"]
        value = w[target] + factor * w[source]
        self.set_zero(state, source)
        state["g"] -= (value - w[target]) * self.gram[target]
        w[target] = value

    def gap(self, state, lam, positive, features, corr):
        return compiled("gram").gram_gap(
            self.yy, self.c, state["g"], state["w"], lam, positive, features, corr, self.curvature
        )

    def set_zero(self, state, j):
        w = state["w"]
        if w[j] != 0.0:
            state["g"] += w[j] * self.gram[j]
            w[j] = 0.0

    def inner(self, state, lam, positive, ws, max_epochs, tol_in, anderson):
        gram = compiled("gram")
        w, g = state["w"], state["g"]
        rr, yr = gram.gram_residual(self.yy, self.c, g, w, self.features)
        return gram.gram_inner(
            self.gram,
            self.c,
            w,
            g,
            rr,
            yr,
            self.y_norm,
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


def uses_gram(X: Any, precompute: bool | str) -> bool:
    """Whether the Lasso on ``X`` is solved from the Gram matrix, as ``precompute`` asks.

    ``True``: yes for dense ``X``; ``"auto"``: for dense ``X`` with more samples than features
    (the choice for paths and cross-validation, where many fits share the matrix); ``False``:
    no. Sparse ``X`` never is (its Gram matrix would be dense).
    """
    if sp.issparse(X):
        return False
    return precompute is True or (precompute == "auto" and X.shape[0] > X.shape[1])


def quadratic_problem(
    X: Any, y: np.ndarray, *, sample_weight=None, fit_intercept=True, precompute: bool | str = False
) -> QuadraticProblem:
    """The Lasso problem for ``X``, from the Gram matrix where :func:`uses_gram` says so."""
    problem_class = GramQuadraticProblem if uses_gram(X, precompute) else QuadraticProblem
    return problem_class(X, y, sample_weight=sample_weight, fit_intercept=fit_intercept)
