"""l1reg: L1 regularization done right, on every array library.

``import l1reg`` loads NumPy and SciPy only; ``l1reg.torch``, ``l1reg.keras`` and ``l1reg.jax`` load
their framework when imported.
"""

from .penalties import L1, GroupL1, Penalty, WeightedL1
from .prox import prox_l1, prox_l1_
from .regularization import l1_norm, l1_regularization

__version__ = "0.1.0.dev0"

__all__ = [
    "L1",
    "GroupL1",
    "Penalty",
    "WeightedL1",
    "__version__",
    "l1_norm",
    "l1_regularization",
    "prox_l1",
    "prox_l1_",
]
