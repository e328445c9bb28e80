"""Scikit-learn estimators with an L1 penalty, solved by :mod:`l1reg.solvers`.

- :class:`Lasso`, :class:`LassoCV`, :func:`lasso_path`;
- :class:`L1LogisticRegression`, :class:`L1LogisticRegressionCV`, :func:`l1_logistic_path`;
- :class:`StabilitySelection`: the features an L1 path selects stably over half-samples.

Importing this package imports scikit-learn's base classes; numba is imported by the first fit.
:class:`StabilitySelection` is loaded on first use: scikit-learn's ``SelectorMixin`` comes with
``sklearn.feature_selection``, which imports ``sklearn.linear_model`` (0.3 s).
"""

from .lasso import Lasso, LassoCV, LassoPath, lasso_path
from .logistic import L1LogisticRegression, L1LogisticRegressionCV, LogisticPath, l1_logistic_path

__all__ = [
    "L1LogisticRegression",
    "L1LogisticRegressionCV",
    "Lasso",
    "LassoCV",
    "LassoPath",
    "LogisticPath",
    "StabilitySelection",
    "l1_logistic_path",
    "lasso_path",
]


def __getattr__(name: str):
    if name == "StabilitySelection":
        from ._stability import StabilitySelection

        globals()[name] = StabilitySelection
        return StabilitySelection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
