"""Compiled one-pass loops over float32/float64 CPU tensors, given the addresses of their memory.

Eager torch needs two passes for ``sum |p|`` (``abs`` writes, ``sum`` reads) and two for
``sign(p) * g``; these loops need one each. The sum adds blocks of ``BLOCK`` values
(:data:`l1reg._numerics.BLOCK`) in the input's dtype (the compiler spreads a block over vector
lanes, so each running float32 sum covers a few hundred terms) and the blocks in float64: exact
past 2**24 elements, like torch's cascade sum. ``reassoc`` is the only relaxed floating-point
rule, which is what lets the block vectorize; NaN and infinity propagate as in plain arithmetic.

The prox loops below them (the prox in an optimizer's metric, and the group prox in it) also
read and write each tensor in place, in as few passes as their arithmetic allows.

Each runs as a job (:mod:`._jobs`): ``*_work(job)`` in the calling thread, ``*_worker`` on every
thread of torch's OpenMP team (:mod:`._threads`).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types

from ..._numerics import BLOCK
from ._jobs import FLOAT32, address_of, rows, take, view

__all__ = [
    "GROUP_PROX_WIDTH",
    "METRIC_SHRINK_WIDTH",
    "SIGN_TIMES_WIDTH",
    "SUM_ABS_WIDTH",
    "group_prox_metric_",
    "group_prox_work",
    "group_prox_worker",
    "metric_shrink_",
    "metric_shrink_work",
    "metric_shrink_worker",
    "sign_times_work",
    "sign_times_worker",
    "sum_abs_work",
    "sum_abs_worker",
]

# rows: (address, count, dtype code); aux: the address of one float64 result per row
SUM_ABS_WIDTH = 3
# rows: (address of x, address of out, count, dtype code); aux: the address of a float64 scale
SIGN_TIMES_WIDTH = 4
# rows: (address of w, address of the second moment, before, groups, after, dtype code,
# take_sqrt, Newton steps); aux: the address of float64 (scale, shift, tau) triples, one a row
GROUP_PROX_WIDTH = 8
# rows: (address of x, address of the second moment, count, dtype code, take_sqrt, tensor
# index); aux: the address of float64 (threshold, shift) pairs, one a tensor
METRIC_SHRINK_WIDTH = 6


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def sum_abs(x: np.ndarray) -> float:  # pragma: no cover - compiled
    """``sum |x|`` of a 1-d float array, blocks in its dtype, blocks added in float64."""
    n = x.size
    zero = x.dtype.type(0)
    total = 0.0
    full = n // BLOCK
    for b in range(full):
        block = x[b * BLOCK : (b + 1) * BLOCK]
        acc = zero
        for i in range(BLOCK):
            acc += abs(block[i])
        total += acc
    acc = zero
    for i in range(full * BLOCK, n):
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


# Loops that divide use NumPy's error model: a division by zero gives inf instead of raising, and
# the check that raises would keep them from vectorizing (scalar divisions were measured 3-6x
# slower in the group prox).
_DIVIDING = {"cache": True, "nogil": True, "error_model": "numpy"}


@numba.njit(**_DIVIDING)
def metric_shrink_(x, second, take_sqrt, threshold, shift):  # pragma: no cover - compiled
    """``x <- (y - clip(y, -t, t)) / D`` with ``y = x D``, ``D = r + shift``, ``r = sqrt(second)``
    or ``second``, in place, in the dtype of ``x``: the prox in the metric ``D`` (exactly 0 where
    ``|x D| <= t``), the operations of the eager torch code in one pass (its values to an ulp:
    torch's vectorized square root is not always correctly rounded)."""
    real = x.dtype.type
    t, s = real(threshold), real(shift)
    for i in range(x.size):
        r = second[i]
        d = (np.sqrt(r) if take_sqrt else r) + s
        y = x[i] * d
        if y > t:
            y -= t
        elif y < -t:
            y += t
        elif y == y:  # (NaN stays NaN, as in softshrink)
            y = real(0)
        x[i] = y / d


@numba.njit(cache=True, nogil=True)
def _metric_shrink_row(row, pair, dtype):  # pragma: no cover - compiled
    metric_shrink_(
        view(row[0], row[2], dtype), view(row[1], row[2], dtype), row[4] != 0, pair[0], pair[1]
    )


@numba.njit(cache=True, nogil=True)
def metric_shrink_work(job: int) -> None:  # pragma: no cover - compiled
    """Row by row (blocks of tensors), :func:`metric_shrink_`."""
    table, aux = rows(job, METRIC_SHRINK_WIDTH)
    count = table.shape[0]
    pairs = view(aux, (table[count - 1, 5] + 1, 2), np.float64)
    k = take(job, count)
    while k >= 0:
        if table[k, 3] == FLOAT32:
            _metric_shrink_row(table[k], pairs[table[k, 5]], np.float32)
        else:
            _metric_shrink_row(table[k], pairs[table[k, 5]], np.float64)
        k = take(job, count)


@numba.cfunc(types.void(types.voidptr), cache=True)
def metric_shrink_worker(job):  # pragma: no cover - compiled
    metric_shrink_work(address_of(job))


# The group prox loops below take 3-d views (before, groups, after). With after == 1 (groups along
# the contiguous axis) they run over 2-d views, where the loop over groups has a unit stride that
# the compiler knows, and vectorizes; else the loop over ``after`` does.


@numba.njit(**_DIVIDING, inline="always")
def _metric_terms(v, r, take_sqrt, scale, shift, tau, tiny):  # pragma: no cover - compiled
    """``(c, (v D)^2, v^2, v^2 c)`` of one value ``v`` with second moment ``r``."""
    d = max(scale * ((np.sqrt(r) if take_sqrt else r) + shift), tiny)
    c = tau / d
    vd = np.float64(v * d)
    v2 = v * v
    return c, vd * vd, v2, v2 * c


@numba.njit(**_DIVIDING)
def _group_start(z, second, c, take_sqrt, scale, shift, tau, weighted, squares, scaled):
    """``c = tau / D``; per group ``||D z||^2``, ``||z||^2`` and ``sum z^2 c`` (float64)."""
    before, groups, after = z.shape
    tiny = np.finfo(z.dtype).tiny
    if after == 1:
        shape = (before, groups)
        z2, r2, c2 = z.reshape(shape), second.reshape(shape), c.reshape(shape)
        for i in range(before):
            for g in range(groups):
                ci, a, b, e = _metric_terms(z2[i, g], r2[i, g], take_sqrt, scale, shift, tau, tiny)
                c2[i, g] = ci
                weighted[g] += a
                squares[g] += b
                scaled[g] += e
        return
    for i in range(before):
        for g in range(groups):
            ta = tb = te = 0.0
            for k in range(after):
                ci, a, b, e = _metric_terms(
                    z[i, g, k], second[i, g, k], take_sqrt, scale, shift, tau, tiny
                )
                c[i, g, k] = ci
                ta += a
                tb += b
                te += e
            weighted[g] += ta
            squares[g] += tb
            scaled[g] += te


@numba.njit(**_DIVIDING)
def _group_sums_(z, c, s, total, slope):  # pragma: no cover - compiled
    """``total[g] += sum (z / a)^2`` and ``slope[g] += sum (z / a)^2 / a``, ``a = s[g] + c``,
    each term in the dtype of ``z``, ``c`` and ``s``, the sums in float64."""
    before, groups, after = z.shape
    one = z.dtype.type(1)
    if after == 1:
        z2, c2 = z.reshape((before, groups)), c.reshape((before, groups))
        for i in range(before):
            for g in range(groups):
                inverse = one / (s[g] + c2[i, g])
                q2 = (z2[i, g] * inverse) ** 2
                total[g] += q2
                slope[g] += q2 * inverse
        return
    for i in range(before):
        for g in range(groups):
            t = 0.0
            u = 0.0
            for k in range(after):
                inverse = one / (s[g] + c[i, g, k])
                q2 = (z[i, g, k] * inverse) ** 2
                t += q2
                u += q2 * inverse
            total[g] += t
            slope[g] += u


@numba.njit(**_DIVIDING)
def _group_scale_(w, c, root):  # pragma: no cover - compiled
    """``w *= root[g] / (root[g] + c)``; ``root[g] = 0`` zeroes group ``g`` (NaN stays NaN)."""
    before, groups, after = w.shape
    zero = w.dtype.type(0)
    if after == 1:
        w2, c2 = w.reshape((before, groups)), c.reshape((before, groups))
        for i in range(before):
            for g in range(groups):
                w2[i, g] *= root[g] / (root[g] + c2[i, g]) if root[g] != zero else zero
        return
    for i in range(before):
        for g in range(groups):
            for k in range(after):
                w[i, g, k] *= root[g] / (root[g] + c[i, g, k]) if root[g] != zero else zero


@numba.njit(**_DIVIDING)
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

    ``w`` and ``second`` are C-contiguous 3-d views (before, groups, after), ``c`` scratch of
    that shape and dtype; ``D = scale * (r + shift)`` with ``r = sqrt(second)`` or ``second``.
    Solves ``min_x 1/2 ||x - z||_D^2 + tau ||x||`` per group: ``x = 0`` where
    ``||D z|| <= tau``, else ``x_i = z_i s / (s + c_i)``, ``c = tau / D``, with ``s`` the root of
    ``sum_i (z_i / (s + c_i))^2 = 1`` by Newton from the lower bound: the rule of
    :func:`l1reg.prox.metric_group_factor`, which ``tests/test_torch.py`` checks it against.
    Each value's arithmetic is in the weight's dtype (float32 halves the cost of the
    divisions), and the sums over groups in float64.
    """
    groups = w.shape[1]
    real = w.dtype.type
    weighted = np.zeros(groups)
    squares = np.zeros(groups)
    scaled = np.zeros(groups)
    _group_start(
        w, second, c, take_sqrt, real(scale), real(shift), real(tau), weighted, squares, scaled
    )
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
        _group_sums_(w, c, s.astype(w.dtype), total, slope)  # (zeroed groups: finite, unused)
        converged = True
        for g in range(groups):
            if keep[g]:
                step = (np.sqrt(total[g]) - 1.0) * total[g] / slope[g]
                s[g] = max(s[g] + step, 0.0)
                if abs(step) > 1e-6 * s[g]:
                    converged = False
        if converged:
            break
    _group_scale_(w, c, np.where(keep, s, 0.0).astype(w.dtype))


@numba.njit(cache=True, nogil=True)
def _group_prox_row(row, floats, dtype):  # pragma: no cover - compiled
    shape = (row[2], row[3], row[4])
    group_prox_metric_(
        view(row[0], shape, dtype),
        view(row[1], shape, dtype),
        np.empty(shape, dtype),
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
