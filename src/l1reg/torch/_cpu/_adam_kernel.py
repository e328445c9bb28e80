r"""Adam's (or AdamW's) step and the L1 prox in Adam's metric, in one pass over memory (numba).

Importing this module imports numba, not torch: the kernels take NumPy arrays (zero-copy views of
the tensors). For each coordinate, with ``g`` the gradient (negated when maximizing), ``s`` the
step count after the increment, ``bc1 = 1 - beta1**s`` and ``bc2 = 1 - beta2**s``:

.. math::

    p &\leftarrow p\,(1 - \eta\delta) \text{ (AdamW)} \quad\text{or}\quad
        g \leftarrow g + \delta p \text{ (Adam)}, \\
    m &\leftarrow m + (1 - \beta_1)(g - m), \qquad v \leftarrow \beta_2 v + (1 - \beta_2)\, g^2, \\
    D &= \sqrt{v} / \sqrt{bc_2} + \epsilon, \qquad p \leftarrow p - (\eta / bc_1)\, m / D, \\
    p &\leftarrow p - \operatorname{clip}(p, -t, t), \qquad t = \eta\lambda / D.

The first three lines are ``torch.optim.Adam``'s step (torch 2.13), in its order of operations
and in the parameter's dtype, the scalars rounded to that dtype as torch rounds them;
the last is the prox of ``lambda * |p|`` in the metric ``D / eta`` (exactly ``+0.0`` where
``|p| <= t``, as ``p - p``; a NaN stays NaN). Adam alone reads the gradient and reads and writes
the parameter and both moments; the prox fused into it adds arithmetic but no memory traffic,
where a separate pass over the parameters costs a quarter of an Adam step on the CPU.

No ``fastmath``: it would allow ``-0.0`` for ``+0.0`` and assume there are no NaN; the loop
vectorizes without it (no reduction; the clip is two selects). The two fused multiply-adds are
explicit, where torch's vectorized add, lerp and addcmul have them. Measured with ``lambda_reg = 0``
against torch 2.13 on an AVX-512 CPU: parameter and moments equal to ``Adam(fused=True)``'s bit
for bit; moments equal to the default step's, the parameter within an ulp (its ``torch.sqrt``
is not correctly rounded: 1 ulp off for some 16 % of float32 values).
``np.sqrt``, not ``math.sqrt``: numba lowers the latter to a libm call that does not vectorize.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._jobs import FLOAT32, address_of, rows, take, view

__all__ = [
    "ADAM_WIDTH",
    "HYPER",
    "adam_prox_loop_",
    "adam_prox_work",
    "adam_prox_worker",
    "coefficients_",
    "new_coefficients",
]

# The hyper-parameters of one tensor, in a float64 row: what the param group and the regularizer
# say at this step (flags as 0.0 / 1.0).
HYPER = ("lr", "beta1", "beta2", "eps", "weight_decay", "decoupled", "maximize", "lambda_reg")
_LR, _BETA1, _BETA2, _EPS, _WEIGHT_DECAY, _DECOUPLED, _MAXIMIZE, _LAMBDA = range(len(HYPER))

# The coefficients of the loop, in the parameter's dtype (so that the arithmetic stays in that
# dtype, as torch's does).
_SIGN, _L2, _DECAY, _W1, _W1_REST, _B2, _W2, _BC2_ROOT, _EPS_C, _NEG_STEP, _THRESHOLD = range(11)
_COEFFICIENTS = 11
# rows of a job: addresses of the parameter, gradient, exp_avg, exp_avg_sq and coefficients, the
# number of values, the dtype code
ADAM_WIDTH = 7


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c``, rounded once on CPUs with fused multiply-add (LLVM's ``fmuladd``).

    As torch's ``Vectorized::fmadd``: one instruction where the CPU has it, a multiply and an
    add where it has not (``llvm.fma`` would call libm there, one value at a time).
    """
    if not (a == b == c and isinstance(a, numba.types.Float)):
        return None

    def codegen(context, builder, signature, args):
        kind = context.get_value_type(signature.return_type)
        signature_ir = ir.FunctionType(kind, [kind, kind, kind])
        fmuladd = builder.module.declare_intrinsic("llvm.fmuladd", [kind], signature_ir)
        return builder.call(fmuladd, args)

    return a(a, b, c), codegen


def new_coefficients(dtype: np.dtype, count: int) -> np.ndarray:
    """``count`` coefficient rows for :func:`coefficients_` to fill."""
    return np.zeros((count, _COEFFICIENTS), dtype=dtype)


@numba.njit(cache=True, nogil=True)
def coefficients_(step, hyper, c):  # pragma: no cover - compiled by numba
    """Add 1 to the step count ``step`` (a 0-d array, as torch does) and fill ``c`` for it."""
    step[()] += 1
    s = float(step[()])
    lr, beta1, beta2 = hyper[_LR], hyper[_BETA1], hyper[_BETA2]
    weight_decay, decoupled = hyper[_WEIGHT_DECAY], hyper[_DECOUPLED] != 0
    c[_SIGN] = -1.0 if hyper[_MAXIMIZE] != 0 else 1.0
    c[_L2] = 0.0 if decoupled else weight_decay
    c[_DECAY] = 1.0 - lr * weight_decay if decoupled else 1.0
    c[_W1] = 1.0 - beta1  # lerp's weight, rounded to the dtype; then 1 - weight in the dtype
    c[_W1_REST] = 1
    c[_W1_REST] = c[_W1_REST] - c[_W1]
    c[_B2] = beta2
    c[_W2] = 1.0 - beta2
    c[_BC2_ROOT] = (1.0 - beta2**s) ** 0.5
    c[_EPS_C] = hyper[_EPS]
    c[_NEG_STEP] = -(lr / (1.0 - beta1**s))
    c[_THRESHOLD] = lr * hyper[_LAMBDA]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def adam_prox_loop_(param, grad, exp_avg, exp_avg_sq, c):  # pragma: no cover - compiled by numba
    """The step over 1-D arrays with the coefficients ``c`` of :func:`coefficients_`, in place."""
    sign, l2, decay = c[_SIGN], c[_L2], c[_DECAY]
    w1, w1_rest, beta2, w2 = c[_W1], c[_W1_REST], c[_B2], c[_W2]
    bc2_root, eps, neg_step, threshold = c[_BC2_ROOT], c[_EPS_C], c[_NEG_STEP], c[_THRESHOLD]
    small = abs(w1) < 0.5
    has_l2 = l2 != 0
    has_decay = decay != 1
    shrink = threshold > 0
    for i in range(param.shape[0]):
        p = param[i]
        g = grad[i] * sign
        if has_decay:
            p = p * decay
        # torch's vectorized add with alpha, lerp (exact at both ends of the weight range) and
        # addcmul are fused multiply-adds
        if has_l2:
            g = _fma(l2, p, g)
        m = exp_avg[i]
        m = _fma(w1, g - m, m) if small else _fma(-w1_rest, g - m, g)
        v = _fma(w2 * g, g, exp_avg_sq[i] * beta2)
        denominator = np.sqrt(v) / bc2_root + eps
        p = p + neg_step * m / denominator
        if shrink:
            # p - clip(p, -t, t) as two selects: exactly 0 where |p| <= t, NaN stays NaN
            t = threshold / denominator
            clipped = p if p < t else t
            clipped = clipped if clipped > -t else -t
            p = p - clipped
        param[i] = p
        exp_avg[i] = m
        exp_avg_sq[i] = v


@numba.njit(cache=True, nogil=True)
def _adam_prox_row(row, dtype):  # pragma: no cover - compiled by numba
    n = row[5]
    adam_prox_loop_(
        view(row[0], n, dtype),
        view(row[1], n, dtype),
        view(row[2], n, dtype),
        view(row[3], n, dtype),
        view(row[4], _COEFFICIENTS, dtype),
    )


@numba.njit(cache=True, nogil=True)
def adam_prox_work(job):  # pragma: no cover - compiled by numba
    """Row by row, :func:`adam_prox_loop_` (the coefficients filled beforehand)."""
    table, _ = rows(job, ADAM_WIDTH)
    count = table.shape[0]
    k = take(job, count)
    while k >= 0:
        if table[k, 6] == FLOAT32:
            _adam_prox_row(table[k], np.float32)
        else:
            _adam_prox_row(table[k], np.float64)
        k = take(job, count)


@numba.cfunc(types.void(types.voidptr), cache=True)
def adam_prox_worker(job):  # pragma: no cover - compiled by numba
    adam_prox_work(address_of(job))
