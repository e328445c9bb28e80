"""PyTorch adapter of l1reg: L1 that gives exact zeros with any optimizer.

Importing this module imports torch.

- :class:`L1Regularizer` chooses the weights to penalize and computes the (group) L1 penalty, fused
  over tensors, for the loss;
- :class:`ProximalL1` wraps any optimizer and applies the penalty by a proximal step instead,
  in the optimizer's own metric: the way to get exact zeros;
- :func:`sparsity`, :func:`selected_features` and :func:`prune` show and use what the zeros bought;
- :func:`lambda_path` chooses the strength by validation (folds), for any module, and returns a
  :class:`NeuralPath`.
"""

from ..neural_path import NeuralPath
from ._fused import l1_norm
from ._inspect import PruneResult, SelectInputs, prune, selected_features, sparsity
from ._path import lambda_path
from ._proximal import ProximalL1
from ._regularizer import L1Regularizer

__all__ = [
    "L1Regularizer",
    "NeuralPath",
    "ProximalL1",
    "PruneResult",
    "SelectInputs",
    "l1_norm",
    "lambda_path",
    "prune",
    "selected_features",
    "sparsity",
]
