"""Cases of the linear models: the estimators (checked in ``fit``), their methods, the paths."""

from __future__ import annotations

import copy

import numpy as np

import l1reg
from house import Case, method

_LASSO = "l1reg.linear_model.lasso"
_LOGISTIC = "l1reg.linear_model.logistic"
# Where the work of a fit starts: building a solver problem, or solving one.
_WORK = (
    f"{_LASSO}:QuadraticProblem",
    f"{_LASSO}:SharedGram",
    f"{_LASSO}:quadratic_problem",
    f"{_LASSO}:solve",
    f"{_LOGISTIC}:LogisticProblem",
    f"{_LOGISTIC}:solve",
    "l1reg.linear_model._base:solve",
)
_DATA = ("X", "y", "sample_weight")  # errors name what is wrong with them (sklearn's wording)


def _X() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(12, 3))


def _y(kind: str) -> np.ndarray:
    X = _X()
    score = X @ [1.0, -2.0, 0.0]
    return score if kind == "regression" else (score > 0).astype(int)


def _fit_args(kind: str) -> dict:
    return {"X": _X(), "y": _y(kind), "sample_weight": None}


def _fit(cls, kind: str):
    return lambda args: cls(**args).fit(_X(), _y(kind))


_SINGLE = {
    "alpha": 0.05,
    "fit_intercept": True,
    "max_iter": 100,
    "tol": 1e-4,
    "warm_start": False,
    "positive": False,
    "weights": None,
}
_PATH = {
    "alphas": 3,
    "eps": 1e-2,
    "fit_intercept": True,
    "weights": None,
    "positive": False,
    "tol": 1e-4,
    "max_iter": 100,
}
_CV = {**_PATH, "cv": 3, "n_jobs": None, "callback": None}

_ESTIMATORS = [
    ("Lasso", l1reg.Lasso, "regression", _SINGLE),
    ("L1LogisticRegression", l1reg.L1LogisticRegression, "classification", _SINGLE),
    ("LassoCV", l1reg.LassoCV, "regression", {**_CV, "precompute": "auto"}),
    ("L1LogisticRegressionCV", l1reg.L1LogisticRegressionCV, "classification", _CV),
]
_PREDICTS = {
    "regression": ("predict",),
    "classification": ("decision_function", "predict_proba", "predict_log_proba", "predict"),
}


_FITTED: dict = {}


def _fitted(cls, kind: str):
    """A fresh copy of a fitted estimator (fitted once, before the test patches the work)."""
    if cls not in _FITTED:
        _FITTED[cls] = cls().fit(_X(), _y(kind))
    return lambda: copy.deepcopy(_FITTED[cls])


CASES = []
for name, cls, kind, params in _ESTIMATORS:
    fitted = _fitted(cls, kind)
    CASES += [
        Case(
            f"l1reg.{name}",
            lambda params=params: dict(params),
            call=_fit(cls, kind),
            work=_WORK,
        ),
        Case(
            f"l1reg.{name}.fit",
            # a fitted estimator, so that a failed refit must leave its fitted attributes
            lambda fitted=fitted, kind=kind: {"self": fitted(), **_fit_args(kind)},
            call=method("fit"),
            work=_WORK,
            arrays=_DATA,
        ),
    ]
    for predict in _PREDICTS[kind]:
        CASES.append(
            Case(
                f"l1reg.{name}.{predict}",
                lambda fitted=fitted: {"self": fitted(), "X": _X()},
                call=method(predict),
                work=(f"{_LASSO}:linear_predict", f"{_LOGISTIC}:linear_predict"),
                arrays=("X",),
            )
        )

CASES += [
    Case(
        "l1reg.lasso_path",
        lambda: {**_PATH, **_fit_args("regression"), "coef_init": None, "precompute": "auto"},
        work=(*_WORK, f"{_LASSO}:solve_path"),
        arrays=_DATA,
    ),
    Case(
        "l1reg.l1_logistic_path",
        lambda: {**_PATH, **_fit_args("classification")},
        work=(*_WORK, f"{_LOGISTIC}:solve_path"),
        arrays=_DATA,
    ),
]

_STABILITY = "l1reg.linear_model._stability"


def _stability_params() -> dict:
    return {
        "estimator": l1reg.Lasso(alpha=0.05, max_iter=100),
        "n_resamples": 3,
        "threshold": 0.6,
        "alphas": 3,
        "eps": 1e-2,
        "max_selected": "auto",
        "n_jobs": None,
        "random_state": 0,
        "callback": None,
    }


def _fitted_selector() -> l1reg.StabilitySelection:
    """A fresh copy of a fitted selector (fitted once, before the test patches the work)."""
    if "selector" not in _FITTED:
        _FITTED["selector"] = l1reg.StabilitySelection(n_resamples=3).fit(_X(), _y("regression"))
    return copy.deepcopy(_FITTED["selector"])


# Its work starts where the half-samples' problems are built (the Lasso's or the logistic's).
_SELECTION_WORK = (
    *_WORK,
    f"{_LASSO}:lasso_problems",
    f"{_LOGISTIC}:logistic_problems",
    f"{_STABILITY}:solve_path",
)
CASES += [
    Case(
        "l1reg.StabilitySelection",
        _stability_params,
        call=lambda args: l1reg.StabilitySelection(**args).fit(_X(), _y("regression")),
        work=_SELECTION_WORK,
    ),
    Case(
        "l1reg.StabilitySelection.fit",
        lambda: {"self": _fitted_selector(), **_fit_args("regression")},
        call=method("fit"),
        work=_SELECTION_WORK,
        arrays=_DATA,
    ),
]
