"""Compiled one-pass loops over float32/float64 CPU tensors, given the addresses of their memory.

Eager torch needs two passes for ``sum |p|`` (``abs`` writes, ``sum`` reads) and two for
``sign(p) * g``; these loops need one each. The sum adds blocks of ``_BLOCK`` values in the input's
dtype (the compiler spreads a block over vector lanes, so each running float32 sum covers a few
hundred terms) and the blocks in float64: exact past 2**24 elements, like torch's cascade sum.
``reassoc`` is the only relaxed floating-point rule, which is what lets the block vectorize; NaN and
infinity propagate as in plain arithmetic.

Both run as jobs (:mod:`._jobs`): ``*_work(job)`` in the calling thread, ``*_worker`` on every
thread of torch's OpenMP team (:mod:`._threads`).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types

from ._jobs import FLOAT32, address_of, rows, take, view

__all__ = [
    "GROUP_PROX_WIDTH",
    "SIGN_TIMES_WIDTH",
    "SUM_ABS_WIDTH",
    "group_prox_metric_",
    "group_prox_work",
    "group_prox_worker",
    "sign_times_work",
    "sign_times_worker",
    "sum_abs_work",
    "sum_abs_worker",
]

_BLOCK = 4096
# rows: (address, count, dtype code); aux: the address of one float64 result per row
SUM_ABS_WIDTH = 3
# rows: (address of x, address of out, count, dtype code); aux: the address of a float64 scale
SIGN_TIMES_WIDTH = 4
# rows: (address of w, address of the second moment, before, groups, after, dtype code,
# take_sqrt, Newton steps); aux: the address of float64 (scale, shift, tau) triples, one a row
GROUP_PROX_WIDTH = 8


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


@numba.njit(cache=True, nogil=True)
def sum_abs_work(job: int) -> None:  # pragma: no cover - compiled
    """Row by row, ``results[k] = sum |x_k|``."""
    table, aux = rows(job, SUM_ABS_WIDTH)
    count = table.shape[0]
    results = view(aux, count, np.float64)
    k = take(job, count)
    while k >= 0:
        address, n = table[k, 0], table[k, 1]
        if table[k, 2] == FLOAT32:
            results[k] = sum_abs(view(address, n, np.float32))
        else:
            results[k] = sum_abs(view(address, n, np.float64))
        k = take(job, count)


@numba.njit(cache=True, nogil=True)
def _sign_times_row(row, scale, dtype):  # pragma: no cover - compiled
    sign_times(view(row[0], row[2], dtype), scale, view(row[1], row[2], dtype))


@numba.njit(cache=True, nogil=True)
def sign_times_work(job: int) -> None:  # pragma: no cover - compiled
    """Row by row, ``out_k = sign(x_k) * scale``."""
    table, aux = rows(job, SIGN_TIMES_WIDTH)
    count = table.shape[0]
    scale = view(aux, 1, np.float64)[0]
    k = take(job, count)
    while k >= 0:
        if table[k, 3] == FLOAT32:
            _sign_times_row(table[k], scale, np.float32)
        else:
            _sign_times_row(table[k], scale, np.float64)
        k = take(job, count)


@numba.cfunc(types.void(types.voidptr), cache=True)
def sum_abs_worker(job):  # pragma: no cover - compiled
    sum_abs_work(address_of(job))


@numba.cfunc(types.void(types.voidptr), cache=True)
def sign_times_worker(job):  # pragma: no cover - compiled
    sign_times_work(address_of(job))


@numba.njit(cache=True, nogil=True)
def _group_sums_(z, c, s, total, slope):  # pragma: no cover - compiled
    """``total[g] += sum (z / a)^2`` and ``slope[g] += sum (z / a)^2 / a``, ``a = s[g] + c``."""
    before, groups, after = z.shape
    for i in range(before):
        if after == 1:  # groups along the contiguous axis: the loop over groups vectorizes
            for g in range(groups):
                inverse = 1.0 / (s[g] + c[i, g, 0])
                q2 = (z[i, g, 0] * inverse) ** 2
                total[g] += q2
                slope[g] += q2 * inverse
        else:
            for g in range(groups):
                t = 0.0
                u = 0.0
                for k in range(after):
                    inverse = 1.0 / (s[g] + c[i, g, k])
                    q2 = (z[i, g, k] * inverse) ** 2
                    t += q2
                    u += q2 * inverse
                total[g] += t
                slope[g] += u


@numba.njit(cache=True, nogil=True)
def group_prox_metric_(
    w: np.ndarray,
    second: np.ndarray,
    c: np.ndarray,
    take_sqrt: bool,
    scale: float,
    shift: float,
    tau: float,
    newton_steps: int,
) -> None:  # pragma: no cover - compiled
    """The exact group prox in the metric ``D``, in place, groups along the middle axis of ``w``.

    ``w`` and ``second`` are 3-d views (before, groups, after), ``c`` float64 scratch of that
    shape; ``D = scale * (r + shift)`` with
    ``r = sqrt(second)`` or ``second``. Solves ``min_x 1/2 ||x - z||_D^2 + tau ||x||`` per group:
    ``x = 0`` where ``||D z|| <= tau``, else ``x_i = z_i s / (s + c_i)``, ``c = tau / D``, with
    ``s`` the root of ``sum_i (z_i / (s + c_i))^2 = 1`` by Newton from the lower bound: the rule of
    the eager torch code, in float64 and in a few passes over a cache-sized tensor.
    """
    before, groups, after = w.shape
    tiny = np.finfo(w.dtype).tiny
    z = w  # (float32 values meet float64 factors below: the arithmetic is float64)
    weighted = np.zeros(groups)
    squares = np.zeros(groups)
    scaled = np.zeros(groups)
    # c = tau / D, and per group ||D z||^2, ||z||^2 and sum z^2 c (flat loops vectorize).
    flat_c = c.reshape(-1)
    flat_second = second.reshape(-1)
    for j in range(flat_c.size):
        r = flat_second[j]
        flat_c[j] = tau / max(scale * ((np.sqrt(r) if take_sqrt else r) + shift), tiny)
    for i in range(before):
        for g in range(groups):
            for k in range(after):
                v = np.float64(z[i, g, k])
                d = tau / c[i, g, k]
                weighted[g] += (v * d) ** 2
                squares[g] += v * v
                scaled[g] += v * v * c[i, g, k]
    keep = weighted > tau * tau
    s = np.zeros(groups)
    for g in range(groups):
        if keep[g]:
            s[g] = max(np.sqrt(squares[g]) - scaled[g] / squares[g], 0.0)
    total = np.empty(groups)
    slope = np.empty(groups)
    for _ in range(newton_steps):
        total[:] = 0.0
        slope[:] = 0.0
        _group_sums_(z, c, s, total, slope)  # (zeroed groups too: finite there, and unused)
        converged = True
        for g in range(groups):
            if keep[g]:
                step = (np.sqrt(total[g]) - 1.0) * total[g] / slope[g]
                s[g] = max(s[g] + step, 0.0)
                if abs(step) > 1e-6 * s[g]:
                    converged = False
        if converged:
            break
    for i in range(before):
        for g in range(groups):
            for k in range(after):
                if keep[g]:
                    w[i, g, k] = z[i, g, k] * (s[g] / (s[g] + c[i, g, k]))
                else:
                    w[i, g, k] = 0.0


@numba.njit(cache=True, nogil=True)
def _group_prox_row(row, floats, dtype):  # pragma: no cover - compiled
    shape = (row[2], row[3], row[4])
    group_prox_metric_(
        view(row[0], shape, dtype),
        view(row[1], shape, dtype),
        np.empty(shape),
        row[6] != 0,
        floats[0],
        floats[1],
        floats[2],
        row[7],
    )


@numba.njit(cache=True, nogil=True)
def group_prox_work(job: int) -> None:  # pragma: no cover - compiled
    """Row by row, :func:`group_prox_metric_` of one weight (its float64 scratch made here)."""
    table, aux = rows(job, GROUP_PROX_WIDTH)
    count = table.shape[0]
    floats = view(aux, (count, 3), np.float64)
    k = take(job, count)
    while k >= 0:
        if table[k, 5] == FLOAT32:
            _group_prox_row(table[k], floats[k], np.float32)
        else:
            _group_prox_row(table[k], floats[k], np.float64)
        k = take(job, count)


@numba.cfunc(types.void(types.voidptr), cache=True)
def group_prox_worker(job):  # pragma: no cover - compiled
    group_prox_work(address_of(job))
