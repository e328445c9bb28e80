r"""The classic L1 penalty, ``lambda_reg * sum_i |w_i|``, on any array library and any container."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from ._array_api import accumulation_dtype, common_library, flatten_arrays
from ._validation import check_non_negative_number

__all__ = ["l1_norm", "l1_regularization"]

# Blocks of this many values are summed on their own, then the block sums are summed the same way,
# so that no running float32 sum covers more than this many terms (a float32 running sum of
# 50 million values in [0, 1] is off by percents; blocks keep the error near 1e-7).
_BLOCK = 4096


def _sum_abs(xp: Any, x: Any) -> Any:
    """``sum |x|`` of one array, 0-d, in its accumulation dtype (float32 for float16/bfloat16)."""
    dtype = accumulation_dtype(xp, x.dtype)
    if array_api_compat.is_jax_namespace(xp):
        # jax.grad(jnp.abs)(0.0) is 1; x * sign(x) has the gradient sign(x), which is 0 at 0.
        magnitude = x * xp.sign(x)
    else:
        magnitude = xp.abs(x)
    if magnitude.dtype != dtype:
        magnitude = xp.astype(magnitude, dtype)
    return _blocked_sum(xp, xp.reshape(magnitude, (-1,)))


def _blocked_sum(xp: Any, flat: Any) -> Any:
    n = flat.shape[0]
    if n is None or n <= _BLOCK:  # n is None for lazy (dask) arrays of unknown size
        return xp.sum(flat)
    head = (n // _BLOCK) * _BLOCK
    partials = xp.sum(xp.reshape(flat[:head], (-1, _BLOCK)), axis=1)
    total = _blocked_sum(xp, partials)
    return total + xp.sum(flat[head:]) if head < n else total


def l1_norm(weights: Any, *, owner: str = "l1_norm") -> Any:
    """``sum_i |w_i|`` over every array in ``weights``, as a 0-d value of their library.

    See :func:`l1_regularization` for what ``weights`` may be.
    """
    arrays = flatten_arrays(weights, "weights", owner)
    library = common_library(arrays, "weights", owner)
    if library is None:
        return np.float64(0.0)
    if library == "torch":
        # The fused multi-tensor fast path; torch is already loaded, since these are its tensors.
        from .torch._fused import l1_norm as torch_l1_norm

        return torch_l1_norm(arrays)
    xp = array_api_compat.array_namespace(*arrays)
    partials = [_sum_abs(xp, x) for x in arrays]
    if len(partials) == 1:
        return partials[0]
    dtype = xp.result_type(*partials)
    return xp.sum(xp.stack([xp.astype(p, dtype) for p in partials]))


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
        float16/bfloat16 weights are summed in float32 and give a float32 result; integer
        weights are promoted to the library's default floating dtype. No array gives 0.0.

    Examples
    --------
    >>> import numpy as np
    >>> from l1reg import l1_regularization
    >>> weights = [np.array([[1.0, -2.0], [0.5, 0.0]]), np.array([-1.0, 3.0])]
    >>> round(float(l1_regularization(weights, lambda_reg=0.01)), 12)
    0.075
    """
    lam = check_non_negative_number(lambda_reg, "lambda_reg", "l1_regularization")
    return l1_norm(weights, owner="l1_regularization") * lam
