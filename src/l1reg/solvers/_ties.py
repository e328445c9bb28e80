r"""Copies of one column: the weight that coordinate descent spreads over them, moved onto one.

Columns that are parallel (exact duplicates; the two indicator columns of a two-level one-hot
encoding, parallel up to the intercept's column) and penalized alike
(:math:`\lambda_s / \|x_s\| = \lambda_t / \|x_t\|`) make the objective flat along the moves of
weight between them: every split of their weight is optimal. Coordinate descent splits it. In an
epoch, the copy after the one that carries the weight sees the correlation that the steps in
between left, and takes it: smaller copy after copy (3e-5, 4e-8, 5e-11, 6e-14 in one epoch of
four copies), values that are not rounding (the coordinate step resolves those to 0,
``_cd_common.tie_margin``) but that a user counting the kept features counts.

:func:`merge_copies` finds the copies among the nonzero coefficients (by a fingerprint of each
column, computed once per feature, then by the inner products of the candidates) and moves the
weight of each onto the cheapest copy (the largest share among equals): ``w_t += c w_s``,
``w_s = 0`` where ``x_s = c x_t`` (plus a multiple of the intercept's column, which the
intercept takes). The fitted values do not move, the penalty does not grow, and
:func:`.coordinate_descent.solve` certifies the result with its duality gap as any other point.

The copies found are kept on the problem: in the next fits (the next alphas of a path),
:func:`copies_left_out` names those at 0 beside their carrier, which ``solve`` leaves out of
its working sets (so they are not split again) and adds back to its last duality gap (where
the carrier's dual constraint covers theirs: the gap certifies the whole problem).
"""

from __future__ import annotations

import numpy as np

from ._problem import compiled

__all__ = ["copies_left_out", "merge_copies"]

_NONE = np.empty(0, dtype=np.int64)

# Two columns are copies when ``1 - cos^2`` of their angle (in the problem's metric, the
# intercept's column taken out) is below this. Copies in float64 differ by rounding (1e-16, so
# 1 - cos^2 ~ 1e-32), but the inner products that measure it round to ~1e-13 on a million rows;
# the bound admits directions 1e-6 apart, and a merged pair that did differ moves the fit by at
# most that share of its weight, in a point that is certified again.
_PARALLEL = 1e-12
# Fingerprints of copies agree to rounding; candidates are those within this (then checked).
_FINGERPRINT = 1e-8
# Prices (lam_j / ||x_j||) this close are one price: the copy with the largest share carries.
_SAME_PRICE = 1e-12


def _fingerprint_cache(problem):
    """What ``_cd_common.copy_candidates`` reads, kept on the problem (its fingerprints fill in
    as features enter a support: a column is fingerprinted once, in one pass over it)."""
    cache = getattr(problem, "_tie_cache", None)
    if cache is None:
        design, u = problem.tie_design()
        u_probes = compiled("common").probe_weights(u) if u.shape[0] else np.zeros(2)
        cache = (*design, u, u_probes)
        problem._tie_cache = cache
        problem._fingerprints = np.full(problem.n_features, np.nan)
    return cache


def merge_copies(problem, state: dict, lam: np.ndarray, positive: bool) -> bool:
    """Move the weight of each copy of a column onto one copy; True when any moved.

    Only penalized nonzero coefficients are looked at; with ``positive``, a copy of opposite
    sign (``c < 0``) keeps its weight (moving it could make the carrier negative).
    """
    cache = _fingerprint_cache(problem)
    runs = compiled("common").copy_candidates(
        state["w"], lam, problem._fingerprints, *cache, _FINGERPRINT
    )
    if runs.shape[0] == 0:
        return False
    moved = False
    for members in np.split(runs, np.flatnonzero(runs < 0) + 1)[:-1]:
        moved |= _merge_group(problem, state, lam, positive, members[:-1])
    return moved


def _merge_group(problem, state, lam, positive, members: np.ndarray) -> bool:
    """Merge the copies among ``members`` (features with one fingerprint) into the carrier."""
    block = problem.tie_block(members).tolist()  # a few columns: Python floats
    k = len(block)
    norms2 = [block[i][i] for i in range(k)]
    norms = [value**0.5 for value in norms2]
    w = state["w"]
    costs = lam[members].tolist()
    shares = np.abs(w[members]).tolist()
    usable = [i for i in range(k) if norms2[i] > 0]
    if len(usable) < 2:
        return False
    price = {i: costs[i] / norms[i] for i in usable}
    cheapest = min(price.values()) * (1 + _SAME_PRICE)
    t = max((i for i in usable if price[i] <= cheapest), key=lambda i: shares[i] * norms[i])
    moved = False
    for s in usable:
        if s == t:
            continue
        cos2 = block[s][t] * block[s][t] / (norms2[s] * norms2[t])
        factor = block[s][t] / norms2[t]  # x_s = factor * x_t
        if cos2 < 1.0 - _PARALLEL or (positive and factor < 0):
            continue
        problem.move_weight(state, members[s], members[t], factor)
        _record(problem, int(members[s]), int(members[t]), factor, norms[s], norms[t])
        moved = True
    return moved


def _record(problem, source, target, factor, source_norm, target_norm) -> None:
    """Remember that ``x_source = factor * x_target``, in the groups of copies of the problem
    (the factors relative to each group's first member found)."""
    known = getattr(problem, "_copies", None)
    if known is None:
        known = problem._copies = {}
    if source in known and target in known:
        return
    if target in known:
        group, to_ref, _ = known[target]
        known[source] = (group, factor * to_ref, source_norm)
    elif source in known:
        group, to_ref, _ = known[source]
        known[target] = (group, to_ref / factor, target_norm)
    else:
        known[target] = (target, 1.0, target_norm)
        known[source] = (target, factor, source_norm)
    problem._copy_arrays = None  # rebuilt by the next copies_left_out


def copies_left_out(problem, w: np.ndarray, lam: np.ndarray, positive: bool) -> np.ndarray:
    """The known copies (found by :func:`merge_copies` in an earlier fit) that stay at 0
    (``_cd_common.copies_left_out``: all copies but each group's carrier)."""
    known = getattr(problem, "_copies", None)
    if known is None:
        return _NONE
    arrays = problem._copy_arrays
    if arrays is None:
        items = sorted((group, j, to_ref, norm) for j, (group, to_ref, norm) in known.items())
        groups, members, to_ref, norms = (np.array(column) for column in zip(*items))
        change = np.flatnonzero(groups[1:] != groups[:-1]) + 1
        starts = np.concatenate(([0], change, [groups.shape[0]])).astype(np.int64)
        members = members.astype(np.int64)
        arrays = problem._copy_arrays = (members, starts, to_ref, norms)
    return compiled("common").copies_left_out(w, lam, *arrays, positive, _SAME_PRICE)
