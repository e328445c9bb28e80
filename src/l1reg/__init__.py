"""l1reg: L1 regularization done right, on every array library.

``import l1reg`` loads NumPy and SciPy only. The estimators (``Lasso``, ``LassoCV``, ...) load
scikit-learn and numba on first use; ``l1reg.torch``, ``l1reg.keras`` and ``l1reg.jax`` load their
framework when imported.
"""

import importlib

from .penalties import L1, GroupL1, Penalty, WeightedL1
from .prox import prox_l1, prox_l1_
from .regularization import l1_norm, l1_regularization

__version__ = "0.1.0.dev0"

_LAZY = {
    "Lasso": "l1reg.linear_model",
    "LassoCV": "l1reg.linear_model",
    "L1LogisticRegression": "l1reg.linear_model",
    "L1LogisticRegressionCV": "l1reg.linear_model",
    "lasso_path": "l1reg.linear_model",
    "l1_logistic_path": "l1reg.linear_model",
    "StabilitySelection": "l1reg.linear_model",
    "load_model": "l1reg.cli.model",
}

__all__ = [
    "L1",
    "GroupL1",
    "L1LogisticRegression",
    "L1LogisticRegressionCV",
    "Lasso",
    "LassoCV",
    "Penalty",
    "StabilitySelection",
    "WeightedL1",
    "__version__",
    "l1_logistic_path",
    "l1_norm",
    "l1_regularization",
    "lasso_path",
    "load_model",
    "prox_l1",
    "prox_l1_",
]


def __getattr__(name: str):
    """Load the estimators on first use, so that ``import l1reg`` stays NumPy/SciPy only."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
