"""Compiled pieces of the coordinate-descent loops, against the one definition of each."""

import numpy as np

from l1reg.prox import soft_threshold
from l1reg.solvers._problem import compiled


def test_soft_threshold_is_the_prox_of_the_core():
    common = compiled("common")
    values = np.concatenate([np.linspace(-3, 3, 61), [-1e300, 1e300, -0.0, np.inf, -np.inf]])
    for threshold in (0.0, 0.5, 2.0):
        expected = soft_threshold(values, threshold)
        got = np.array([common.soft_threshold(v, threshold, False, 0.0) for v in values])
        np.testing.assert_array_equal(got, expected)
        # positive: the prox of the L1 plus the indicator of w >= 0 clips it at 0
        got = np.array([common.soft_threshold(v, threshold, True, 0.0) for v in values])
        np.testing.assert_array_equal(got, np.maximum(expected, 0.0))


def _anderson_reference(iterates):
    """``sum_i c_i x_{i+1}`` with ``c = argmin ||U^T c||, sum(c) = 1`` (U: the differences)."""
    diffs = np.diff(iterates, axis=0)
    k = diffs.shape[0]
    # KKT system of the equality-constrained least squares
    kkt = np.zeros((k + 1, k + 1))
    kkt[:k, :k] = 2 * diffs @ diffs.T
    kkt[:k, k] = kkt[k, :k] = 1.0
    c = np.linalg.solve(kkt, np.r_[np.zeros(k), 1.0])[:k]
    return c @ iterates[1:]


def test_anderson_candidate_is_the_extrapolation_it_defines():
    common = compiled("common")
    rng = np.random.default_rng(0)
    n, k = 8, common.ANDERSON_K
    iterates = rng.standard_normal((k + 1, n)).cumsum(axis=0)
    buffer = np.empty((k + 1, n))
    floor = np.full(n, -0.5)
    for positive in (False, True):
        out = np.full(n, np.nan)
        n_stored = 0
        index = rng.permutation(n)  # the iterate is read through ``index``
        for step, iterate in enumerate(iterates):
            full = np.empty(n)
            full[index] = iterate
            n_stored, made = common.anderson_candidate(
                buffer, n_stored, full, index, floor, positive, out
            )
            assert made == (step == k) and n_stored == (0 if made else step + 1)
        expected = _anderson_reference(iterates)
        if positive:
            expected = np.maximum(expected, floor)
        np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12)
        assert positive == (expected == floor).any()
