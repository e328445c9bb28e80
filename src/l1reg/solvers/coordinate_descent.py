r"""Working-set coordinate descent with gap-safe screening and Anderson extrapolation.

The algorithm, for one ``alpha`` (the outer loop is Python, the loops over samples are compiled):

1. compute the gradient over every feature still in play, a dual point (the residual scaled into
   the dual constraint set) and the duality gap; stop when the gap is below ``tol`` times the
   objective at ``w = 0``, once at least one round of steps 3-4 has run (a warm start that
   already meets ``tol`` is still improved: scikit-learn too checks the gap after an epoch),
   or at once where the start is exact or the caller trusts it (``trust_start``);
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

A coordinate step resolves a tie at its threshold, within the rounding of the gradient, to an
exact 0 (``_cd_common.tie_margin``); at the end, the weight that the descent spread over copies
of one column is moved onto one copy and the moved point is certified again, and the copies
found stay at 0 in the next fits of the problem: out of the working sets, in the last gap
(``_ties.py``).

``max_iter`` caps the epochs (passes over the working set) summed over the outer iterations.
Numba is imported when the first problem is built, not when this module is imported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..penalties import L1, WeightedL1
from ._ties import copies_left_out, merge_copies

__all__ = ["PENALTIES", "SolveResult", "solve"]

#: The penalties :func:`solve` handles, and no other: the separable weighted L1
#: ``alpha * sum_j c_j |w_j|``, passed as ``alpha`` and ``weights`` (the ``c_j``; ``L1`` is all
#: ``c_j = 1``). Its coordinate step (soft-thresholding at ``alpha c_j / L_j``) and its dual set
#: (``|x_j^T theta| <= alpha c_j``) are compiled into the loops; a penalty that is not separable
#: in this way needs other loops, not another argument (:func:`l1reg.solvers.fista` takes any
#: penalty with a prox).
PENALTIES = (L1, WeightedL1)

_MIN_WS = 10


@dataclass
class SolveResult:
    coef: np.ndarray
    intercept: float
    gap: float  # in the units of the objective (Lasso: 1/(2n) scaling)
    n_iter: int
    converged: bool
    tol_abs: float


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


def _with_left_out(problem, state, lam, positive, candidates, corr, left_out):
    """``candidates`` and ``corr`` with the copies left out added, and the gap over them all."""
    more = np.empty(left_out.shape[0])
    problem.correlations(state, left_out, more)
    candidates = np.concatenate([candidates, left_out])
    corr = np.concatenate([corr, more])
    gap, kappa = problem.gap(state, lam, positive, candidates, corr)
    return candidates, corr, gap, kappa


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
    trust_start: bool = False,
) -> SolveResult:
    r"""Minimise ``datafit + alpha * sum_j c_j |w_j|`` from ``state`` (updated in place).

    The penalty is the separable weighted L1 and only it (:data:`PENALTIES`): ``weights`` are
    the :math:`c_j \ge 0` (None: all 1; 0 leaves a feature unpenalized) and each coordinate step
    is the soft-thresholding

    .. math:: w_j \leftarrow \operatorname{sign}(v_j) \max(|v_j| - \alpha c_j / L_j, 0),
              \qquad v_j = w_j - \nabla_j f(w) / L_j

    (clipped at 0 with ``positive``), ``L_j`` the datafit's curvature along feature ``j``.

    Stops when the duality gap is at most ``tol`` times the objective at ``w = 0``, or after
    ``max_iter`` epochs (then ``converged`` is False; the caller warns). A start that meets
    ``tol`` is improved by one round before its gap is trusted (see the loop), unless
    ``trust_start``: then it is returned as it is, after 0 epochs (a refit from the caller's own
    solution, which must not move). When every feature is penalized and ``alpha`` is at least
    the problem's ``alpha_max``, the answer is ``w = 0`` (intercept fitted), from any start.
    """
    lam = problem.lam(alpha, weights)
    tol_abs = problem.tol_abs(tol)
    candidates = problem.features
    unpenalized = candidates[lam[candidates] == 0]
    # w = 0 is the answer by the definition of alpha_max: returned as such, not left to the
    # loops, whose own rounding of the same gradient left one coefficient of 2e-16 at alpha_max.
    # (With unpenalized features alpha_max is not known before they are fitted; the exact test
    # in the loop below covers those problems.)
    at_zero = unpenalized.shape[0] == 0 and alpha >= problem.alpha_max(weights, positive)
    w = state["w"]
    # Coefficients of features that carry no information (all-zero or constant columns) are 0.
    # Negative coefficients of a warm start are not feasible when ``positive``.
    for j in np.flatnonzero(w):
        if at_zero or problem.curvature[j] == 0 or (positive and w[j] < 0):
            problem.set_zero(state, j)
    # Copies of a column that another copy carries (found in an earlier fit, ``_ties.py``) stay
    # at 0: out of the working sets, and back in the last gap, which certifies them too.
    left_out = copies_left_out(problem, w, lam, positive)
    if left_out.shape[0]:
        keep = np.ones(problem.n_features, dtype=bool)
        keep[left_out] = False
        candidates = candidates[keep[candidates]]
    curvature = problem.curvature
    epochs = 0
    gap = np.inf
    converged = False
    # A trusted start is judged as it is at first: settling its intercept first would move it by
    # rounding even where it is the answer.
    settle = not trust_start
    merged = False
    while True:
        if settle:
            epochs += _settle(
                problem, state, lam, positive, unpenalized, tol_abs, max_iter - epochs
            )
        settle = True
        corr = np.empty(candidates.shape[0])
        problem.correlations(state, candidates, corr)
        gap, kappa = problem.gap(state, lam, positive, candidates, corr)
        # The gap is trusted after one round of coordinate descent, as scikit-learn checks it
        # after an epoch: on a path, the previous alpha's solution often meets ``tol`` at the
        # next alpha already (``tol`` scales with the objective at 0, which dwarfs the objective
        # at small alphas), and returning it unchanged would repeat its error at every step.
        # Trusted at once: the answer by definition; a point whose penalized part is zero and
        # meets its optimality conditions exactly (kappa = 1: no step would move it); a start
        # the caller vouches for.
        trusted = (
            epochs > 0
            or candidates.shape[0] == 0
            or at_zero
            or trust_start
            or (kappa == 1.0 and not w[candidates[lam[candidates] > 0]].any())
        )
        if gap <= tol_abs and trusted and left_out.shape[0]:
            candidates, corr, gap, kappa = _with_left_out(
                problem, state, lam, positive, candidates, corr, left_out
            )
            left_out = left_out[:0]
        if gap <= tol_abs and trusted:
            # Copies of one column share their weight at the end of a descent: moved onto one
            # (``_ties.py``), once, and certified again (the gap of the moved point is read).
            if not merged and epochs > 0:
                merged = True
                if merge_copies(problem, state, lam, positive):
                    continue
            converged = True
            break
        if at_zero or epochs >= max_iter or candidates.shape[0] == 0:
            if left_out.shape[0]:  # (the gap reported covers them too)
                gap = _with_left_out(problem, state, lam, positive, candidates, corr, left_out)[2]
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
