"""The fused L1 sum over many torch tensors: the fast path of :func:`l1reg.l1_regularization`.

A Python loop of ``torch.norm(p, 1)`` pays, per tensor, a slow norm kernel plus an autograd node and
a backward kernel. Here the forward pass sums ``|p|`` in buckets (small tensors are concatenated
first so that one kernel covers many of them), and the backward pass is one custom node that writes
``sign(p) * grad`` for every tensor with two multi-tensor (``torch._foreach_*``) calls.

``abs().sum()`` is used, never ``torch.norm(p, 1)`` / ``linalg.vector_norm``: on the CPU those stop
growing at 2**24 per thread, while ``sum`` reduces pairwise (cascade) and stays exact there.
"""

from __future__ import annotations

import torch

# Tensors smaller than this are concatenated into buckets of about this many elements, so that one
# abs/sum pair covers many of them; larger ones are reduced on their own (a copy would cost more
# than the kernel launches it saves).
_BUCKET_ELEMENTS = 1 << 16


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16/bfloat16 sum in float32; integers in the default dtype; others as they are."""
    if dtype.is_floating_point or dtype.is_complex:
        return torch.float32 if dtype.itemsize < 4 and dtype.is_floating_point else dtype
    return torch.get_default_dtype()


def _sum_abs(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    magnitude = tensor.abs()
    return magnitude.sum() if magnitude.dtype == dtype else magnitude.sum(dtype=dtype)


def _bucketed_sum_abs(tensors: tuple[torch.Tensor, ...], dtype: torch.dtype) -> torch.Tensor:
    partials: list[torch.Tensor] = []
    bucket: list[torch.Tensor] = []
    bucket_size = 0
    for tensor in tensors:
        if tensor.numel() >= _BUCKET_ELEMENTS:
            partials.append(_sum_abs(tensor, dtype))
            continue
        bucket.append(tensor.reshape(-1))
        bucket_size += tensor.numel()
        if bucket_size >= _BUCKET_ELEMENTS:
            partials.append(_sum_abs(torch.cat(bucket), dtype))
            bucket, bucket_size = [], 0
    if bucket:
        partials.append(_sum_abs(torch.cat(bucket), dtype))
    if len(partials) == 1:
        return partials[0]
    return torch.stack(partials).sum()


class _L1Norm(torch.autograd.Function):
    """sum_i |p_i| over every element of every tensor, with one backward node for all of them."""

    @staticmethod
    def forward(ctx, dtype: torch.dtype, *tensors: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(*tensors)
        groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
        for tensor in tensors:
            groups.setdefault((tensor.device, tensor.dtype), []).append(tensor)
        totals = [
            _bucketed_sum_abs(tuple(group), dtype).to(tensors[0].device)
            for group in groups.values()
        ]
        return totals[0] if len(totals) == 1 else torch.stack(totals).sum()

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        tensors = ctx.saved_tensors
        wanted = [i for i, needs in enumerate(ctx.needs_input_grad[1:]) if needs]
        grads: list[torch.Tensor | None] = [None] * len(tensors)
        if wanted:
            # d|p|/dp = sign(p), and sign(0) = 0: the minimum-norm subgradient at zero.
            signs = torch._foreach_sign([tensors[i] for i in wanted])
            torch._foreach_mul_(signs, grad_output)
            for i, sign in zip(wanted, signs):
                grads[i] = sign
        return (None, *grads)


def l1_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``sum |p|`` over every tensor, as one differentiable 0-d tensor.

    Summed in float32 for float16/bfloat16 inputs; the result has the widest accumulation dtype.
    """
    dtypes = {accumulation_dtype(t.dtype) for t in tensors}
    dtype = dtypes.pop() if len(dtypes) == 1 else _widest(dtypes)
    floating = [t if t.is_floating_point() or t.is_complex() else t.to(dtype) for t in tensors]
    return _L1Norm.apply(dtype, *floating)


def _widest(dtypes: set[torch.dtype]) -> torch.dtype:
    result = dtypes.pop()
    for dtype in dtypes:
        result = torch.promote_types(result, dtype)
    return result
