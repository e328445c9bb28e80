"""Compiled one-pass loops for float32/float64 CPU tensors, seen through zero-copy NumPy views.

Eager torch needs two passes for ``sum |p|`` (``abs`` writes, ``sum`` reads) and two for
``sign(p) * g``; these loops need one each. The sum adds blocks of ``_BLOCK`` values in the input's
dtype (the compiler spreads a block over vector lanes, so each running float32 sum covers a few
hundred terms) and the blocks in float64: exact past 2**24 elements, like torch's cascade sum.
``reassoc`` is the only relaxed floating-point rule, which is what lets the block vectorize; NaN and
infinity propagate as in plain arithmetic.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["sign_times", "sum_abs"]

_BLOCK = 4096


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def sum_abs(x: np.ndarray) -> float:  # pragma: no cover - compiled
    """``sum |x|`` of a 1-d float array, blocks in its dtype, blocks added in float64."""
    n = x.size
    zero = x.dtype.type(0)
    total = 0.0
    full = n // _BLOCK
    for b in range(full):
        block = x[b * _BLOCK : (b + 1) * _BLOCK]
        acc = zero
        for i in range(_BLOCK):
            acc += abs(block[i])
        total += acc
    acc = zero
    for i in range(full * _BLOCK, n):
        acc += abs(x[i])
    return total + acc


@numba.njit(cache=True, nogil=True)
def sign_times(x: np.ndarray, scale: float, out: np.ndarray) -> None:  # pragma: no cover
    """``out = sign(x) * scale``, with ``sign`` 0 at 0 and at NaN (as ``torch.sign`` on the CPU)."""
    zero = x.dtype.type(0)
    value = x.dtype.type(scale)
    for i in range(x.size):
        v = x[i]
        out[i] = value if v > zero else (-value if v < zero else zero)
