r"""Stability selection with complementary pairs (Shah and Samworth, 2013) over an L1 path.

Each of ``B = n_resamples`` pairs splits the rows at random into two disjoint halves of
``floor(n / 2)`` rows (stratified by class for a classifier), and both halves are fitted along
one grid of alphas computed on all the data, warm-started from one alpha to the next. The
selection probability of feature ``j`` at ``alpha`` is the fraction of the ``2B`` half-samples
whose fit has ``w_j != 0``; feature ``j`` is selected when its largest probability over the
region of alphas reaches the threshold :math:`\pi_{thr}`.

The error control is Meinshausen and Bühlmann's (2010, Theorem 1), which Shah and Samworth's
Theorem 1 (2013) extends to complementary pairs under the same assumptions: when the noise
features are exchangeable and the base procedure does better than random guessing, the expected
number :math:`V` of noise features selected is at most

.. math:: E[V] \le \frac{q^2}{(2\pi_{thr} - 1)\,p}, \qquad \tfrac12 < \pi_{thr} \le 1,

with :math:`q` the expected number of features the base procedure selects over the whole region
(the union of the supports at the region's alphas, for one half-sample) and :math:`p` the number
of features. :math:`q` is estimated by its average over the ``2B`` half-samples.

The region ends where that average would exceed ``max_selected``. A path that goes further than
needed is the costly part of the work (the fits at small alphas have the largest supports), so
each half-sample's path stops once its own union is well past the cap; in the rare case where a
few halves stopped before the average reached it, those are solved again, further down. Either
way the result is that of the whole paths cut at the region's end: a path stopped early is a
prefix of the path that is not.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.feature_selection import SelectorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._validation import Instance, Interval, NoneValue, Options, PositiveInt
from . import lasso, logistic
from ._base import alpha_grid, solve_path, warn_path_failures
from ._cv import run_units
from ._data import check_penalty_weights, check_sample_weight, checked_data, fit_method
from ._params import CV_CONSTRAINTS, PATH_CONSTRAINTS, check_parameters

__all__ = ["StabilitySelection"]

_ESTIMATORS = Instance(
    "l1reg.linear_model.lasso:Lasso",
    "l1reg.linear_model.lasso:LassoCV",
    "l1reg.linear_model.logistic:L1LogisticRegression",
    "l1reg.linear_model.logistic:L1LogisticRegressionCV",
    text="an l1reg linear model (Lasso, LassoCV, L1LogisticRegression or L1LogisticRegressionCV)",
)
_RANDOM_STATES = Instance(
    "numpy.random:RandomState",
    "numpy.random:Generator",
    text="a numpy RandomState or Generator",
)
# Meinshausen and Bühlmann's example (2010, section 2.4): q = sqrt(0.8 p) bounds E[V] by
# 0.8 / (2 threshold - 1) whatever p: 1 at threshold 0.9, 4 at the default 0.6.
_AUTO_FRACTION = 0.8


def _stop_level(cap: float) -> float:
    """How far past the cap on the average union one half-sample's path goes before it stops.

    Measured at the region's end (100 half-samples each on n=100 p=500 and n=500 p=50 with 5
    true features, three seeds each, and on the diabetes data; 10 on a 500 x 5000 problem): the
    largest union of one half-sample was 1.1-1.8 times the average (30 for 20, 9 for 6.3, 5 for
    2.8, 71 for 63). Twice the cap and 5 more leaves room; a half that stops short anyway is
    solved again further down (see :func:`_region_end`).
    """
    return 2.0 * cap + 5.0


class _Data(NamedTuple):
    """The checked input of a fit."""

    X: Any
    targets: list[np.ndarray]  # one per problem: y for the Lasso, {-1, +1} per binary problem
    groups: list[np.ndarray]  # the rows of each class (all rows for the Lasso): the strata
    sample_weight: np.ndarray | None
    weights: np.ndarray | None  # penalty weights
    classifier: bool


class _HalfPath(NamedTuple):
    """What one half-sample's paths leave: the alphas solved, the supports, the unions."""

    n_known: int  # the first n_known alphas of the grid were solved (for every class)
    flat_support: np.ndarray  # k * n_features + j for each (alpha k, feature j) selected
    unions: np.ndarray  # (n_known,): features selected at alphas[0..k], for each k
    failures: list  # (alpha, gap, tolerance) of the fits that did not converge


def _complementary_pairs(
    groups: list[np.ndarray], n_pairs: int, rng: Any
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_pairs`` random splits of the rows into two disjoint halves of ``floor(n/2)`` rows.

    ``groups`` partition the rows (one group, or one per class): each group is split into two
    equal parts; the rows that groups of odd size leave over are dealt to the halves in a random
    order, the last one left out when their number (the parity of n) is odd. So both halves have
    ``floor(n/2)`` rows and a group's counts in the two halves differ by at most one.
    """
    pairs = []
    for _ in range(n_pairs):
        first, second, spare = [], [], []
        for group in groups:
            rows = rng.permutation(group)
            half = rows.shape[0] // 2
            first.append(rows[:half])
            second.append(rows[half : 2 * half])
            spare.append(rows[2 * half :])
        spare = rng.permutation(np.concatenate(spare))
        half = spare.shape[0] // 2
        first.append(spare[:half])
        second.append(spare[half : 2 * half])
        pairs.append((np.sort(np.concatenate(first)), np.sort(np.concatenate(second))))
    return pairs


def _check_halves(halves: list, groups: list, sw: np.ndarray | None, owner: str, what: str):
    """Refuse sample weights that leave a half-sample (or one of its classes) without weight."""
    if sw is None:
        return
    group_of = np.empty(sw.shape[0], dtype=np.int64)
    for g, rows in enumerate(groups):
        group_of[rows] = g
    for i, rows in enumerate(halves):
        weight = np.bincount(group_of[rows], weights=sw[rows], minlength=len(groups))
        if not np.all(weight > 0):
            raise ValueError(
                f"The 'sample_weight' parameter of {owner} must give a positive weight to "
                f"{what} of every half-sample; half-sample {i} of the {len(halves)} drawn has "
                f"none. Give fewer samples a zero weight, or change random_state."
            )


def _region_end(results: list[_HalfPath], cap: float, n_alphas: int) -> tuple[int, list[int]]:
    """(index of the region's last alpha, the half-samples to solve further to know it).

    The region is the longest prefix of the grid whose average union is at most ``cap`` (one
    alpha at least). It is known once it ends before the alphas every half solved do; otherwise
    the halves that stopped first go further: beyond its stop, a half's union is at least what
    it reached (the unions only grow), and the first alpha where these lower bounds average
    above ``cap`` bounds the region's end.
    """
    known = np.array([r.n_known for r in results])
    k_min = int(known.min())
    average = np.mean([r.unions[:k_min] for r in results], axis=0)
    over = np.flatnonzero(average > cap)
    if over.size:
        return max(int(over[0]) - 1, 0), []
    if k_min == n_alphas:
        return n_alphas - 1, []
    k_max = int(known.max())
    lower = np.mean(
        [np.pad(r.unions, (0, k_max - r.n_known), mode="edge") for r in results], axis=0
    )
    over = np.flatnonzero(lower > cap)
    needed = int(over[0]) + 1 if over.size else n_alphas
    return -1, [i for i, r in enumerate(results) if r.n_known < needed]


class StabilitySelection(SelectorMixin, BaseEstimator):
    r"""Features selected by stability selection over an L1 path, with complementary pairs.

    Each of the ``n_resamples`` pairs (Shah and Samworth's ``B``) is a random split of the rows
    into two disjoint halves of ``floor(n_samples / 2)`` rows, stratified by class for a
    classifier; each of the ``2 * n_resamples`` half-samples is fitted along one grid of alphas
    (computed on all the data), warm-started along it. A feature's selection probability at an
    alpha is the fraction of the half-samples whose fit keeps it (a nonzero coefficient, for any
    class); the features whose largest probability over the region of alphas reaches
    ``threshold`` are selected, and ``expected_false_selections_`` bounds how many of them are
    noise in expectation (see :mod:`l1reg.linear_model._stability`).

    Parameters
    ----------
    estimator : Lasso, LassoCV, L1LogisticRegression or L1LogisticRegressionCV, default=None
        The base procedure (None: ``Lasso()``). Its ``fit_intercept``, ``tol``, ``max_iter``,
        ``weights`` and ``positive`` carry over to every fit (and a ``LassoCV``'s
        ``precompute``); its ``alpha`` (or ``cv``, ``n_jobs``, ``callback``) is not used: the
        grid replaces it. It is never fitted nor modified. A logistic model with more than two
        classes is fitted one-vs-rest, as it fits itself: a feature is selected in a half-sample
        when any class's coefficient is nonzero.
    n_resamples : int, default=100
        The number ``B`` of complementary pairs (Shah and Samworth's notation): ``2B`` paths
        are fitted, each on ``floor(n_samples / 2)`` rows. The paper uses ``B = 50``.
    threshold : float, default=0.6
        The selection probability :math:`\pi_{thr}` in (0.5, 1] a feature must reach at some
        alpha of the region (the bound needs :math:`\pi_{thr} > 1/2`).
    alphas : int, array-like or None, default=None
        The grid: an int gives that many values from ``alpha_max`` (computed on all the data)
        down to ``eps * alpha_max``, geometrically; an array is used as given, sorted
        decreasing. None: the estimator's ``alphas`` for a CV estimator, else 100.
    eps : float in (0, 1) or None, default=None
        None: the estimator's ``eps`` for a CV estimator, else 1e-3.
    max_selected : "auto", float or None, default="auto"
        The cap on :math:`q`: the region runs from the top of the grid down to the last alpha
        where the average number of features selected over the region so far (the union of the
        supports, per half-sample) is at most this (the first alpha at least). "auto":
        ``sqrt(0.8 * n_features)``, Meinshausen and Bühlmann's example, for which the bound is
        ``0.8 / (2 * threshold - 1)`` (4 at the default threshold, 1 at 0.9) whatever the number
        of features. None: the whole grid. A grid down to ``1e-3 * alpha_max`` selects nearly
        every feature at some alpha (measured with 50 pairs, 5 true features, Gaussian data): on
        500 x 50 data the average union over it was 48.5, a bound of 235 false selections, and
        all 50 features reached 0.6; with "auto" the region ended at 0.06 ``alpha_max``, the
        average was 6.3 (a bound of 4.0) and exactly the 5 true features were selected. On
        100 x 500 data: 59.7 (a bound of 36) over the grid, 19.5 (3.8) with "auto", the region
        ending at 0.14 ``alpha_max``.
    n_jobs : int, default=None
        Threads for the half-samples' paths (None: 1; -1: all cores). The splits are drawn
        before, so the result does not depend on it.
    random_state : int, RandomState, Generator or None, default=0
        Draws the splits (scikit-learn's convention: an int for the same splits every time).
    callback : callable, default=None
        Called in this process as ``callback(n_done, n_total)`` each time a half-sample's path
        is done (``n_total = 2 * n_resamples``, grown by the paths solved again further down,
        when some are): a progress bar's hook.

    Attributes
    ----------
    alphas_ : ndarray of shape (n_alphas,)
        The region of alphas, decreasing: the grid from its top down to the region's end.
    selection_probabilities_ : ndarray of shape (n_alphas, n_features)
        The fraction of the ``2 * n_resamples`` half-samples whose fit at each alpha keeps each
        feature.
    stability_scores_ : ndarray of shape (n_features,)
        The largest selection probability of each feature over the region.
    support_ : ndarray of shape (n_features,), bool
        ``stability_scores_ >= threshold``: the selected features (``get_support()``).
    average_selected_ : float
        The estimate of :math:`q`: the number of features selected at some alpha of the region,
        averaged over the half-samples.
    expected_false_selections_ : float
        The bound ``average_selected_**2 / ((2 * threshold - 1) * n_features)`` on the
        expected number of noise features selected.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features,)
        Where ``X`` has feature names (a DataFrame).

    References
    ----------
    N. Meinshausen and P. Bühlmann, "Stability selection", JRSS-B 72(4), 2010.
    R. D. Shah and R. J. Samworth, "Variable selection with error control: another look at
    stability selection", JRSS-B 75(1), 2013.

    Examples
    --------
    >>> import numpy as np
    >>> from l1reg.linear_model import Lasso, StabilitySelection
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 20)); y = 2 * X[:, 0] - X[:, 3] + 0.5 * rng.normal(size=100)
    >>> selector = StabilitySelection(Lasso(), n_resamples=25).fit(X, y)
    >>> selector.get_support(indices=True)
    array([0, 3])
    >>> selector.transform(X).shape
    (100, 2)
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "estimator": [NoneValue(), _ESTIMATORS],
        "n_resamples": [PositiveInt()],
        "threshold": [Interval(numbers.Real, 0.5, 1, "right")],
        "alphas": [NoneValue(), *PATH_CONSTRAINTS["alphas"]],
        "eps": [NoneValue(), Interval(numbers.Real, 0, 1, "neither")],
        "max_selected": [NoneValue(), Options("auto"), Interval(numbers.Real, 0, None, "neither")],
        "n_jobs": CV_CONSTRAINTS["n_jobs"],
        "random_state": [
            NoneValue(),
            Interval(numbers.Integral, 0, 2**32 - 1, "both"),
            _RANDOM_STATES,
        ],
        "callback": CV_CONSTRAINTS["callback"],
    }

    def __init__(
        self,
        estimator: Any = None,
        *,
        n_resamples: int = 100,
        threshold: float = 0.6,
        alphas: int | Any = None,
        eps: float | None = None,
        max_selected: str | float | None = "auto",
        n_jobs: int | None = None,
        random_state: Any = 0,
        callback: Callable[[int, int], Any] | None = None,
    ) -> None:
        self.estimator = estimator
        self.n_resamples = n_resamples
        self.threshold = threshold
        self.alphas = alphas
        self.eps = eps
        self.max_selected = max_selected
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.callback = callback

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.required = True
        return tags

    @fit_method
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> StabilitySelection:
        """Fit the ``2 * n_resamples`` half-samples' paths and select the stable features.

        ``sample_weight`` as repeated rows, within each half-sample.
        """
        check_parameters(self)
        estimator = lasso.Lasso() if self.estimator is None else self.estimator
        check_parameters(estimator)
        data = self._checked_input(estimator, X, y, sample_weight)
        owner = type(self).__name__
        rng = self.random_state
        if not isinstance(rng, np.random.Generator):
            rng = check_random_state(rng)
        # Every split is drawn here, before any fit: the result does not depend on n_jobs.
        pairs = _complementary_pairs(data.groups, self.n_resamples, rng)
        halves = [rows for pair in pairs for rows in pair]
        what = "each class" if data.classifier else "the rows"
        _check_halves(halves, data.groups, data.sample_weight, owner, what)

        if data.classifier:
            problems = logistic.logistic_problems(
                data.X,
                data.targets,
                data.sample_weight,
                fit_intercept=estimator.fit_intercept,
                owner=owner,
                context=" in every half-sample",
            )
        else:
            problems = lasso.lasso_problems(
                data.X,
                data.targets[0],
                data.sample_weight,
                fit_intercept=estimator.fit_intercept,
                precompute=getattr(estimator, "precompute", "auto"),
            )
        alpha_max = max(
            problem.alpha_max(data.weights, estimator.positive) for problem in problems(None)
        )
        # (a CV estimator's path settings, unless given here)
        alphas = self.alphas if self.alphas is not None else getattr(estimator, "alphas", 100)
        eps = self.eps if self.eps is not None else getattr(estimator, "eps", 1e-3)
        grid = np.sort(alpha_grid(alpha_max, alphas, eps))[::-1].copy()
        options = {
            "weights": data.weights,
            "positive": estimator.positive,
            "tol": estimator.tol,
            "max_iter": estimator.max_iter,
            "intercept_dtype": np.float64,
        }
        path_type = logistic.LogisticPath if data.classifier else lasso.LassoPath
        n_features = data.X.shape[1]

        def half_path(rows: np.ndarray, level: float) -> _HalfPath:
            selected, n_known, failures = None, grid.shape[0], []
            for problem in problems(rows):  # one per class for one-vs-rest
                union = np.zeros(n_features, dtype=bool)

                def stop(coef, union=union):
                    union |= coef != 0
                    return np.count_nonzero(union) > level

                path, found = solve_path(
                    problem,
                    grid[:n_known],
                    path_type,
                    stop=stop if level < n_features else None,
                    **options,
                )
                failures += found
                n_known = path.alphas.shape[0]  # the next classes stop there too
                keeps = path.coefs != 0
                selected = keeps if selected is None else selected[:, :n_known] | keeps
            unions = np.logical_or.accumulate(selected, axis=1).sum(axis=0)
            return _HalfPath(n_known, np.flatnonzero(selected.T), unions, failures)

        cap = self._cap(n_features)
        results: list[Any] = [None] * len(halves)
        todo, level, n_done = list(range(len(halves))), _stop_level(cap), 0
        while todo:
            found = run_units(
                [lambda i=i, level=level: half_path(halves[i], level) for i in todo],
                self.n_jobs,
                self._progress(n_done),
            )
            for i, result in zip(todo, found, strict=True):
                results[i] = result
            n_done += len(todo)
            end, todo = _region_end(results, cap, grid.shape[0])
            level *= 2

        # Only the fits inside the region count: those beyond it change nothing.
        failures = [f for r in results for f in r.failures if f[0] >= grid[end]]
        warn_path_failures(owner, failures, estimator.max_iter)
        self._store(grid[: end + 1].copy(), results, n_features)
        return self

    def _checked_input(self, estimator: Any, X: Any, y: Any, sample_weight: Any) -> _Data:
        """The data checked (``X`` as the estimator reads it), before any work."""
        owner = type(self).__name__
        classifier = is_classifier(estimator)
        checks = logistic._X_CHECKS if classifier else lasso._X_CHECKS
        X, y = checked_data(X, y, owner, estimator=self, **checks)
        n_samples, n_features = X.shape
        if n_samples < 2:
            raise ValueError(
                f"Invalid 'X' argument of {owner}: found {n_samples} sample, and stability "
                "selection splits the samples into two halves of at least one."
            )
        if classifier:
            y, classes = logistic._check_classes(y, owner)
            groups = [np.flatnonzero(y == label) for label in classes]
            sizes = np.array([rows.shape[0] for rows in groups])
            if sizes.min() < 2:
                label = np.asarray(classes[int(np.argmin(sizes))]).item()
                raise ValueError(
                    f"{owner} needs at least 2 samples of each class in y (one in each "
                    f"half-sample); class {label!r} has 1."
                )
            targets = logistic._binary_targets(y, classes)
        else:
            groups, targets = [np.arange(n_samples)], [np.asarray(y, dtype=np.float64)]
        sw = check_sample_weight(sample_weight, n_samples, owner)
        c = check_penalty_weights(estimator.weights, n_features, type(estimator).__name__)
        return _Data(X, targets, groups, sw, c, classifier)

    def _store(self, alphas: np.ndarray, results: list[_HalfPath], n_features: int) -> None:
        """The fitted attributes, from the half-samples' paths over the region ``alphas``."""
        n_region = alphas.shape[0]
        flat = np.concatenate([r.flat_support for r in results])
        counts = np.bincount(flat[flat < n_region * n_features], minlength=n_region * n_features)
        probabilities = counts.reshape(n_region, n_features) / len(results)
        average = float(np.mean([r.unions[n_region - 1] for r in results]))
        self.alphas_ = alphas
        self.selection_probabilities_ = probabilities
        self.stability_scores_ = probabilities.max(axis=0)
        self.support_ = self.stability_scores_ >= self.threshold
        self.average_selected_ = average
        self.expected_false_selections_ = average**2 / ((2 * self.threshold - 1) * n_features)

    def _cap(self, n_features: int) -> float:
        """The cap on the average union over the region (``max_selected`` resolved)."""
        if self.max_selected is None:
            return math.inf
        if self.max_selected == "auto":
            return math.sqrt(_AUTO_FRACTION * n_features)
        return float(self.max_selected)

    def _progress(self, n_done: int) -> Callable[[int, int], Any] | None:
        """The callback of one round of paths, counting those of the rounds before."""
        if self.callback is None:
            return None
        return lambda done, total: self.callback(n_done + done, n_done + total)

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self)
        return self.support_
