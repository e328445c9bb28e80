"""StabilitySelection: what it selects, the error bound it reports, and its scikit-learn manners."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline

from l1reg.linear_model import (
    L1LogisticRegression,
    L1LogisticRegressionCV,
    Lasso,
    LassoCV,
    StabilitySelection,
    _stability,
)

# Five true features: four at or above the noise level, one well below it (it may or may not be
# selected; it is never counted as a false selection).
AMPLITUDES = np.array([2.0, 1.5, 1.25, 1.0, 0.2])
NOISE = 1.0


def _regression(n: int, p: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    beta = np.zeros(p)
    beta[rng.choice(p, AMPLITUDES.shape[0], replace=False)] = AMPLITUDES * rng.choice(
        [-1.0, 1.0], AMPLITUDES.shape[0]
    )
    return X, X @ beta + NOISE * rng.standard_normal(n), beta


@pytest.mark.parametrize(("n", "p"), [(100, 500), (500, 50)], ids=["p>>n", "n>p"])
def test_selects_the_strong_features_with_fewer_false_ones_than_the_bound(n, p):
    false, bounds = [], []
    for seed in range(20):
        X, y, beta = _regression(n, p, seed)
        selector = StabilitySelection(Lasso(), n_resamples=10, alphas=50).fit(X, y)
        # Above the noise level: the feature's signal |beta_j| * sd(x_j) is at least the noise sd.
        strong = np.abs(beta) * X.std(axis=0) >= NOISE
        assert strong.sum() >= 3
        missed = np.flatnonzero(strong & ~selector.support_)
        assert missed.size == 0, (seed, missed, selector.stability_scores_[missed])
        false.append(np.count_nonzero(selector.support_ & (beta == 0)))
        bounds.append(selector.expected_false_selections_)
        assert selector.average_selected_ <= np.sqrt(0.8 * p)  # the default region's cap
    # The bound is informative (a few features out of p) and holds on average over the seeds.
    assert max(bounds) <= 0.8 / (2 * 0.6 - 1) < p / 10
    assert np.mean(false) < np.mean(bounds)
    assert max(false) <= 2


def test_a_region_down_to_the_bottom_of_the_grid_makes_the_bound_useless():
    # Why the default region stops early: over the whole grid (down to 1e-3 alpha_max) nearly
    # every feature is selected at some alpha, and the bound exceeds the number of features.
    X, y, beta = _regression(500, 50, 0)
    default = StabilitySelection(n_resamples=10).fit(X, y)
    whole = StabilitySelection(n_resamples=10, max_selected=None).fit(X, y)
    assert whole.alphas_[-1] == pytest.approx(1e-3 * whole.alphas_[0])
    assert whole.average_selected_ > 40 and whole.expected_false_selections_ > 50
    assert whole.support_.sum() > 40
    assert default.expected_false_selections_ < 5
    np.testing.assert_array_equal(default.get_support(), beta != 0)
    # the region is a prefix of the grid; its probabilities are the whole paths' own
    n_region = default.alphas_.shape[0]
    assert n_region < whole.alphas_.shape[0]
    np.testing.assert_array_equal(default.alphas_, whole.alphas_[:n_region])
    np.testing.assert_array_equal(
        default.selection_probabilities_, whole.selection_probabilities_[:n_region]
    )


def test_halves_solved_again_further_down_give_the_same_result(monkeypatch):
    # Each half's path stops a little past the cap; when some stop before the average reaches
    # it, they are solved again with a higher stop level. A stop level at the cap itself makes
    # that happen; the result must be that of the uninterrupted paths.
    X, y, _ = _regression(100, 500, 3)
    reference = StabilitySelection(n_resamples=10, max_selected=None).fit(X, y)
    early = StabilitySelection(n_resamples=10).fit(X, y)
    calls = []
    monkeypatch.setattr(_stability, "_stop_level", lambda cap: cap / 2)
    again = StabilitySelection(n_resamples=10, callback=lambda *a: calls.append(a)).fit(X, y)
    assert calls[-1][1] > 20  # some halves were solved twice
    assert [done for done, _ in calls] == list(range(1, len(calls) + 1))
    for fitted in (early, again):
        n_region = fitted.alphas_.shape[0]
        np.testing.assert_array_equal(fitted.alphas_, early.alphas_)
        np.testing.assert_array_equal(
            fitted.selection_probabilities_, reference.selection_probabilities_[:n_region]
        )
        assert fitted.average_selected_ == early.average_selected_


def test_n_jobs_and_random_state():
    X, y, _ = _regression(100, 200, 1)
    calls = []
    one = StabilitySelection(n_resamples=8, n_jobs=1).fit(X, y)
    two = StabilitySelection(
        n_resamples=8, n_jobs=2, callback=lambda *args: calls.append(args)
    ).fit(X, y)
    for name in ("alphas_", "selection_probabilities_", "support_"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
    assert one.expected_false_selections_ == two.expected_false_selections_
    assert sorted(calls) == [(i, 16) for i in range(1, 17)]  # one per half-sample
    again = StabilitySelection(n_resamples=8).fit(X, y)
    np.testing.assert_array_equal(again.selection_probabilities_, one.selection_probabilities_)
    other = StabilitySelection(n_resamples=8, random_state=1).fit(X, y)
    n = min(other.alphas_.shape[0], one.alphas_.shape[0])
    assert not np.array_equal(other.selection_probabilities_[:n], one.selection_probabilities_[:n])
    generator = StabilitySelection(n_resamples=8, random_state=np.random.default_rng(0)).fit(X, y)
    assert generator.selection_probabilities_.shape[1] == 200


def test_complementary_halves_are_disjoint_stratified_and_of_floor_n_over_2_rows():
    labels = np.array([0] * 7 + [1] * 4 + [2] * 3)  # n = 14, classes of odd and even size
    groups = [np.flatnonzero(labels == c) for c in range(3)]
    rng = np.random.RandomState(0)
    pairs = _stability._complementary_pairs(groups, 50, rng)
    for first, second in pairs:
        assert first.shape == second.shape == (7,)
        assert np.intersect1d(first, second).size == 0
        counts = [np.bincount(labels[half], minlength=3) for half in (first, second)]
        assert np.all(np.abs(counts[0] - counts[1]) <= 1) and np.all(counts[0] >= 1)
    odd = _stability._complementary_pairs([np.arange(9)], 20, rng)
    assert all(first.shape == second.shape == (4,) for first, second in odd)
    assert len({tuple(first) for first, _ in odd}) > 10  # random splits


def test_logistic_selects_the_true_features():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 40))
    score = 2.0 * X[:, 3] - 1.5 * X[:, 17] + 1.5 * X[:, 30]
    y = np.where(rng.random(400) < 1 / (1 + np.exp(-score)), "yes", "no")
    selector = StabilitySelection(L1LogisticRegression(), n_resamples=10).fit(X, y)
    np.testing.assert_array_equal(selector.get_support(indices=True), [3, 17, 30])
    assert selector.expected_false_selections_ < 5
    # the path settings of a CV estimator are used
    cv = StabilitySelection(L1LogisticRegressionCV(alphas=20), n_resamples=5).fit(X, y)
    assert cv.alphas_.shape[0] <= 20


def test_more_than_two_classes_select_what_any_class_uses():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((450, 30))
    scores = np.column_stack([3 * X[:, 0], 3 * X[:, 5], 3 * X[:, 9]])
    y = np.argmax(scores + rng.gumbel(size=scores.shape), axis=1)
    selector = StabilitySelection(L1LogisticRegression(), n_resamples=8).fit(X, y)
    assert set(selector.get_support(indices=True)) == {0, 5, 9}


def test_the_estimator_settings_carry_over():
    X, y, beta = _regression(200, 30, 2)
    weights = np.ones(30)
    weights[0] = 0.0  # unpenalized: kept by every fit at every alpha
    selector = StabilitySelection(Lasso(weights=weights), n_resamples=5).fit(X, y)
    assert selector.stability_scores_[0] == 1.0 and selector.support_[0]
    positive = StabilitySelection(Lasso(positive=True), n_resamples=5).fit(X, y)
    assert not np.any(positive.support_ & (beta < 0))
    cv = StabilitySelection(LassoCV(alphas=10, eps=0.1), n_resamples=5, max_selected=None)
    cv.fit(X, y)
    np.testing.assert_allclose(cv.alphas_[-1] / cv.alphas_[0], 0.1)
    assert cv.alphas_.shape == (10,)


def test_in_a_pipeline_and_with_feature_names():
    X, y, _ = _regression(200, 30, 4)
    pipeline = make_pipeline(StabilitySelection(Lasso(), n_resamples=5), LinearRegression())
    pipeline.fit(X, y)
    selector = pipeline[0]
    kept = selector.get_support()
    assert pipeline[1].coef_.shape == (kept.sum(),)
    np.testing.assert_array_equal(selector.transform(X), X[:, kept])
    assert pipeline.score(X, y) > 0.8
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(30)])
    named = StabilitySelection(n_resamples=5).fit(frame, y)
    assert list(named.get_feature_names_out()) == [f"f{j}" for j in np.flatnonzero(kept)]
    np.testing.assert_array_equal(named.feature_names_in_, frame.columns)


def test_nothing_the_user_gave_is_modified():
    X, y, _ = _regression(100, 20, 5)
    X_before, y_before = X.copy(), y.copy()
    estimator = Lasso(tol=1e-5)
    before = copy.deepcopy(vars(estimator))
    sample_weight = np.ones(100)
    StabilitySelection(estimator, n_resamples=4).fit(X, y, sample_weight=sample_weight)
    assert vars(estimator).keys() == before.keys()
    assert estimator.get_params() == Lasso(tol=1e-5).get_params()
    assert not hasattr(estimator, "coef_")
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    np.testing.assert_array_equal(sample_weight, np.ones(100))


def test_bad_input_is_refused_with_the_house_wording():
    X, y, _ = _regression(40, 10, 6)
    with pytest.raises(ValueError, match=r"'threshold' parameter of StabilitySelection must be a "):
        StabilitySelection(threshold=0.5).fit(X, y)
    message = (
        "The 'threshold' parameter of StabilitySelection must be a float in the range (0.5, 1]. "
        "Got 1.5 instead."
    )
    with pytest.raises(ValueError) as raised:
        StabilitySelection(threshold=1.5).fit(X, y)
    assert str(raised.value) == message
    with pytest.raises(TypeError, match="'estimator' parameter of StabilitySelection"):
        StabilitySelection(LinearRegression()).fit(X, y)
    with pytest.raises(ValueError, match="'tol' parameter of Lasso"):
        StabilitySelection(Lasso(tol=-1)).fit(X, y)
    labels = np.array([0] * 39 + [1])
    with pytest.raises(ValueError, match="at least 2 samples of each class"):
        StabilitySelection(L1LogisticRegression()).fit(X, labels)
    weights = np.zeros(40)
    weights[0] = 1.0  # one row holds all the weight: one half of each pair has none
    with pytest.raises(ValueError, match="'sample_weight' parameter of StabilitySelection"):
        StabilitySelection(n_resamples=3).fit(X, y, sample_weight=weights)
    with pytest.raises(ValueError, match="1 sample"):
        StabilitySelection().fit(X[:1], y[:1])


def test_docstring_example_runs():
    import doctest

    failed, attempted = doctest.testmod(_stability)
    assert attempted > 0 and failed == 0
