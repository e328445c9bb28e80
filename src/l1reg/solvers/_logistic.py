"""The binary logistic datafit as the coordinate-descent solver reads it (:class:`LogisticProblem`).

The compiled loops are in ``_cd_logistic``: proximal Newton steps on each working set.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..datafits import positive_class_share
from ._problem import Design, Problem, as_fortran, compiled, penalty_weights


class LogisticProblem(Problem):
    r"""A binary L1 logistic problem ``1/S sum_i s_i log(1 + exp(-y_i (x_i w + b)))``.

    ``y`` is in {-1, 1}; the intercept starts at its best value for ``w = 0``.
    """

    datafit = "logistic"

    def __init__(
        self,
        X: Any,
        y: np.ndarray,
        *,
        sample_weight=None,
        fit_intercept=True,
        owner: str = "L1 logistic regression",
        context: str = "",
    ) -> None:
        super().__init__(X, fit_intercept)
        n, p = X.shape
        self.y = np.asarray(y, dtype=np.float64)
        if sample_weight is None:
            self.a = np.full(n, 1.0 / n)
        else:
            sw = np.asarray(sample_weight, dtype=np.float64)
            self.a = sw / sw.sum()
        self.design = Design(X if sp.issparse(X) else as_fortran(X))
        sq = np.empty(p)
        compiled("common").weighted_column_norms2(*self.design.args, self.a, p, sq)
        self.curvature = 0.25 * sq
        self.features = np.flatnonzero(self.curvature > 0).astype(np.int64)
        if fit_intercept:
            share = positive_class_share(np, self.y, self.a, owner=owner, context=context)
            self.b0 = float(np.log(share / (1 - share)))
        else:
            self.b0 = 0.0
        t = -self.y * self.b0
        self.objective_at_zero = float(self.a @ (np.maximum(t, 0) + np.log1p(np.exp(-abs(t)))))

    def grad_at_zero(self) -> np.ndarray:
        """Minus the gradient at ``w = 0`` with the best intercept."""
        out = np.zeros(self.n_features)
        corr = np.empty(self.features.shape[0])
        z = np.full(self.n_samples, self.b0)
        compiled("logistic").logistic_correlations(
            *self.design.args, self.y, self.a, z, self.features, corr
        )
        out[self.features] = corr
        return out

    def init_state(self, coef=None, intercept=None):
        w = np.zeros(self.n_features) if coef is None else np.array(coef, dtype=np.float64)
        b = self.b0 if intercept is None else float(intercept)
        if not self.fit_intercept:
            b = 0.0
        if self.design.is_sparse:
            z = np.full(self.n_samples, b)
            nonzero = np.flatnonzero(w)
            for j in nonzero:
                compiled("common").col_axpy(j, *self.design.args, w[j], z)
        else:
            z = self.design.dense @ w + b
            z = np.asarray(z, dtype=np.float64)
        return {"w": w, "z": z, "b": np.array([b])}

    def lam(self, alpha, weights):
        return alpha * penalty_weights(weights, self.n_features)

    def tol_abs(self, tol):
        return tol * self.objective_at_zero

    def correlations(self, state, features, out):
        compiled("logistic").logistic_correlations(
            *self.design.args, self.y, self.a, state["z"], features, out
        )

    def prepare_gap(self, state):
        if self.fit_intercept:
            compiled("logistic").logistic_newton_intercept(
                self.y, self.a, state["z"], state["b"], 30
            )

    def gap(self, state, lam, positive, features, corr):
        return compiled("logistic").logistic_gap(
            self.y, self.a, state["z"], state["w"], lam, positive, features, corr, self.curvature
        )

    def set_zero(self, state, j):
        w = state["w"]
        if w[j] != 0.0:
            compiled("common").col_axpy(j, *self.design.args, -w[j], state["z"])
            w[j] = 0.0

    def inner(self, state, lam, positive, ws, max_epochs, tol_in, anderson):
        return compiled("logistic").logistic_inner(
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

    # -- copies of one column (``_ties.py``) --------------------------------------------------
    def tie_design(self):
        """The columns, and the intercept's direction (ones) when it is fitted."""
        return self.design.args, (np.ones(self.n_samples) if self.fit_intercept else np.empty(0))

    def _columns(self, features):
        if self.design.is_sparse:
            return self.design.transposed[features].toarray().T
        return np.asarray(self.design.dense[:, features], dtype=np.float64)

    def tie_block(self, features):
        """Inner products of the columns ``features`` (weights ``a``; centered, with an
        intercept)."""
        columns = self._columns(features)
        if self.fit_intercept:
            columns -= self.a @ columns
        return np.einsum("ij,i,ik->jk", columns, self.a, columns)  # (no BLAS call)

    def move_weight(self, state, source, target, factor):
        """``w_target += factor * w_source``, ``w_source = 0``; the intercept takes the constant
        of ``x_s = factor x_t + constant``, so the margins do not move."""
        w, z = state["w"], state["z"]
        moving = w[source]
        common = compiled("common")
        common.col_axpy(source, *self.design.args, -moving, z)
        common.col_axpy(target, *self.design.args, factor * moving, z)
        w[target] += factor * moving
        w[source] = 0.0
        if self.fit_intercept:
            columns = self._columns(np.array([source, target]))
            shift = moving * float(self.a @ (columns[:, 0] - factor * columns[:, 1]))
            z += shift
            state["b"][0] += shift

    def intercept(self, state) -> float:
        return float(state["b"][0]) if self.fit_intercept else 0.0

    def to_objective_units(self, gap):
        return gap
