r"""The classic L1 penalty, ``lambda_reg * sum_i |w_i|``, on any array library and any container."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from . import _numerics
from ._array_api import common_library, flatten_arrays
from ._validation import Checked, Instance, NonNegativeFloat, declare_params, invalid_parameter

__all__ = ["l1_norm", "l1_regularization"]


def _bad_weights(valid: Any) -> list:
    return ["abc", None, 1.5, [np.ones(2), [1.0, 2.0]], {"w": np.array(["a", "b"])}]


_WEIGHTS = [
    Checked("an array, or a list, tuple or dict of arrays of numbers of one library", _bad_weights)
]
_OWNER = [Instance("builtins:str", text="a str")]


def _arrays(weights: Any, owner: str) -> tuple[list[Any], str | None]:
    """The arrays of ``weights`` and their one library, checked: arrays of numbers only."""
    arrays = flatten_arrays(weights, "weights", owner)
    library = common_library(arrays, "weights", owner)
    if library != "torch":  # every torch dtype is one of numbers
        for x in arrays:
            if not _numerics.is_numeric_dtype(x.dtype):
                expected = "an array, or a list, tuple or dict of arrays of numbers"
                raise TypeError(invalid_parameter("weights", owner, expected, x))
    return arrays, library


def _total(arrays: list[Any], library: str | None) -> Any:
    """``sum |w|`` over checked arrays of one library, as a 0-d value of that library."""
    if library is None:
        return np.float64(0.0)
    if library == "torch":
        # The fused multi-tensor fast path; torch is already loaded, since these are its tensors.
        from .torch._fused import l1_norm as torch_l1_norm

        return torch_l1_norm(arrays)
    xp = array_api_compat.array_namespace(*arrays)
    # jax.grad(jnp.abs)(0.0) is 1; x * sign(x) has the gradient sign(x), which is 0 at 0.
    at_zero = array_api_compat.is_jax_namespace(xp)
    partials = [_numerics.sum_abs(xp, x, differentiable_at_zero=at_zero) for x in arrays]
    if len(partials) == 1:
        return partials[0]
    dtype = xp.result_type(*partials)
    return xp.sum(xp.stack([xp.astype(p, dtype) for p in partials]))


@declare_params(weights=_WEIGHTS, owner=_OWNER)
def l1_norm(weights: Any, *, owner: str = "l1_norm") -> Any:
    """``sum_i |w_i|`` over every array in ``weights``, as a 0-d value of their library.

    See :func:`l1_regularization` for what ``weights`` may be; ``owner`` is the name errors
    give the caller.
    """
    return _total(*_arrays(weights, owner))


@declare_params(weights=_WEIGHTS, lambda_reg=[NonNegativeFloat()])
def l1_regularization(weights: Any, lambda_reg: float = 0.01) -> Any:
    r"""The L1 penalty :math:`\lambda \sum_i |w_i|` over every array in ``weights``.

    Parameters
    ----------
    weights : array, or any nesting of list / tuple / dict of arrays
        NumPy, PyTorch, JAX or any array-API library (CuPy, Dask, ...), all of one library. A
        generator such as ``model.parameters()`` and a JAX pytree are accepted. Every element of
        every array counts once, as if all were concatenated into one vector.
    lambda_reg : float, default 0.01
        The regularization strength, a finite number >= 0.

    Returns
    -------
    0-d array of the weights' library
        Differentiable where the library differentiates (``loss.backward()`` in torch,
        ``jax.grad``); its gradient is ``lambda_reg * sign(w)``, which is 0 at ``w = 0``.
        float16/bfloat16 weights (NumPy's ml_dtypes bfloat16 too) are summed in float32 and give
        a float32 result; integer weights are promoted to the library's default floating dtype.
        No array gives 0.0.

    Examples
    --------
    >>> import numpy as np
    >>> from l1reg import l1_regularization
    >>> weights = [np.array([[1.0, -2.0], [0.5, 0.0]]), np.array([-1.0, 3.0])]
    >>> round(float(l1_regularization(weights, lambda_reg=0.01)), 12)
    0.075
    """
    return _total(*_arrays(weights, "l1_regularization")) * float(lambda_reg)
