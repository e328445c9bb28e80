r"""The numerical rules every layer shares, written once on the array API.

- :func:`accumulation_dtype`: the dtype a sum of values of a dtype is taken in;
- :func:`blocked_sum`: a sum in which no running sum covers more than :data:`BLOCK` terms;
- :func:`sum_abs`: ``sum |x|`` of one array, by those two rules, with the gradient 0 at 0;
- :func:`sigmoid` and :func:`log1p_exp`: the logistic function and ``log(1 + e^t)``, without
  overflow.

``xp`` is an array namespace: what ``array_api_compat.array_namespace`` returns (NumPy, torch,
JAX, ...), or an adapter's own namespace with the same functions (``l1reg.keras`` passes one built
on ``keras.ops``). The compiled kernels that must stay separate for speed (numba in
``l1reg.solvers`` and ``l1reg.torch``) are tested against these definitions.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = [
    "BLOCK",
    "accumulation_dtype",
    "blocked_sum",
    "is_low_precision_float",
    "is_numeric_dtype",
    "log1p_exp",
    "sigmoid",
    "sum_abs",
]

# Blocks of this many values are summed on their own, then the block sums are summed the same
# way, so that no running float32 sum covers more than this many terms (a float32 running sum
# of 50 million values in [0, 1] is off by percents; blocks keep the error near 1e-7).
BLOCK = 4096


def is_low_precision_float(dtype: Any) -> bool:
    """True for NumPy's extension floats of under 32 bits (ml_dtypes' bfloat16, float8...).

    NumPy knows them only as opaque dtypes (kind 'V'), so ``isdtype`` refuses them; ml_dtypes is
    asked only when it is loaded already (an array of its dtypes cannot exist otherwise).
    """
    ml_dtypes = sys.modules.get("ml_dtypes")
    if ml_dtypes is None or getattr(dtype, "kind", None) != "V":
        return False
    try:
        return ml_dtypes.finfo(dtype).bits < 32
    except (TypeError, ValueError):
        return False


def is_numeric_dtype(dtype: Any) -> bool:
    """True for a dtype of numbers: booleans, integers, floats (with NumPy's low-precision
    extension floats), complex; False for strings, objects, records and ``None``."""
    if dtype is None:
        return False
    if is_low_precision_float(dtype):
        return True
    kind = getattr(dtype, "kind", None)
    if kind is not None:
        return kind in "biufc"
    # torch and other libraries' dtypes: every dtype they have is one of numbers.
    return True


def accumulation_dtype(xp: Any, dtype: Any) -> Any:
    """The dtype in which values of ``dtype`` are summed.

    float16 and bfloat16 (also NumPy arrays of ml_dtypes' bfloat16) are summed in float32: a
    bfloat16 running sum stops growing at 256. Integers and booleans are promoted to the
    library's default floating dtype; complex values, whose moduli are real, are summed in the
    real dtype of their parts; float32 and float64 are summed as they are.
    """
    if is_low_precision_float(dtype):
        return xp.float32
    if xp.isdtype(dtype, "complex floating"):
        real = xp.finfo(dtype).dtype
        return getattr(xp, real) if isinstance(real, str) else real  # (torch names it)
    if xp.isdtype(dtype, "real floating"):
        if xp.finfo(dtype).bits < 32:
            return xp.float32
        return dtype
    return xp.asarray(0.0).dtype


def blocked_sum(xp: Any, flat: Any) -> Any:
    """The sum of the 1-d array ``flat``, block by block (:data:`BLOCK` values), as a 0-d array.

    Up to :data:`BLOCK` values it is ``xp.sum(flat)`` itself; a lazy array of unknown size is
    summed by ``xp.sum`` (its library chooses the order).
    """
    n = flat.shape[0]
    if n is None or n <= BLOCK:
        return xp.sum(flat)
    head = (n // BLOCK) * BLOCK
    total = blocked_sum(xp, xp.sum(xp.reshape(flat[:head], (-1, BLOCK)), axis=1))
    return total + xp.sum(flat[head:]) if head < n else total


def sum_abs(xp: Any, x: Any, *, differentiable_at_zero: bool = False) -> Any:
    """``sum |x|`` of one array, 0-d, in its :func:`accumulation_dtype`, by :func:`blocked_sum`.

    With ``differentiable_at_zero`` the magnitude is ``x * sign(x)``, whose derivative is
    ``sign(x)``, 0 at 0, where automatic differentiation of ``abs`` gives 1 (JAX, Keras on JAX).
    """
    dtype = accumulation_dtype(xp, x.dtype)
    magnitude = x * xp.sign(x) if differentiable_at_zero else xp.abs(x)
    if magnitude.dtype != dtype:
        magnitude = xp.astype(magnitude, dtype)
    return blocked_sum(xp, xp.reshape(magnitude, (-1,)))


def sigmoid(xp: Any, t: Any) -> Any:
    r"""The logistic function :math:`1 / (1 + e^{-t})`, from :math:`e^{-|t|}` (never overflows)."""
    e = xp.exp(-xp.abs(t))
    return xp.where(t >= 0, 1 / (1 + e), e / (1 + e))


def log1p_exp(xp: Any, t: Any) -> Any:
    r""":math:`\log(1 + e^t) = \max(t, 0) + \log(1 + e^{-|t|})`, without overflow."""
    return xp.clip(t, 0, None) + xp.log1p(xp.exp(-xp.abs(t)))
