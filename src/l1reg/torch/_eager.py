"""The proximal steps by torch operations, on any device: multi-tensor (``torch._foreach_*``)
soft-thresholding, and the group prox (Euclidean or in the optimizer's metric) one weight at a time
or stacked. What the compiled CPU engine (``_cpu``) does not take comes here; the formulas are
the core's (:mod:`l1reg.prox`).

Exact zeros come from ``x - clip(x, -t, t)`` (``x - x`` is exactly 0) and from multiplying by an
exactly-zero factor. DTensor weights are shrunk on their local shards; the group step all-reduces
the sums over groups split across shards (once for the norms and, in the optimizer's metric, once
for the zero test and twice per Newton step).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import array_api_compat.torch as xp
import torch

from .._numerics import accumulation_dtype
from ..prox import group_shrink_factor, metric_group_factor
from ._distributed import all_reduce_sum, is_dtensor, local, shard_groups
from ._metric import Denominator
from ._regularizer import group_squares
from ._selection import Selected

__all__ = ["group_proxes_", "keepdim_shape", "shrink_plain_", "shrink_scaled_"]

# Values per stack of alike weights in the group prox: its temporaries take about ten times the
# stack's memory (128 MiB of float32 each here).
STACK = 1 << 25


def shrink_plain_(tensors: list[torch.Tensor], thresholds: list[float]) -> None:
    """``x <- x - clip(x, -t, t)`` for each tensor and its scalar threshold, in place."""
    shrink = torch._foreach_clamp_max(tensors, thresholds)
    torch._foreach_clamp_min_(shrink, [-t for t in thresholds])
    torch._foreach_sub_(tensors, shrink)


def shrink_scaled_(
    tensors: list[torch.Tensor], metrics: list[Denominator], thresholds: list[float]
) -> None:
    """``x <- x - clip(x, -c / D, c / D)`` with ``D = root + shift``, coordinate-wise, in place.

    ``x * D`` is soft-thresholded at ``c`` (exact zeros where ``|x| D <= c``) and divided back by
    ``D``. The metrics all take the square root, or none does.
    """
    seconds = [metric.second for metric in metrics]
    if metrics[0].take_sqrt:
        denominators = torch._foreach_sqrt(seconds)
    else:
        denominators = torch._foreach_mul(seconds, 1.0)
    torch._foreach_add_(denominators, [metric.shift for metric in metrics])
    scaled = torch._foreach_mul(tensors, denominators)
    shrink = torch._foreach_clamp_max(scaled, thresholds)
    torch._foreach_clamp_min_(shrink, [-c for c in thresholds])
    torch._foreach_sub_(scaled, shrink)  # exactly 0 where |x D| <= c
    torch._foreach_div_(scaled, denominators)
    torch._foreach_copy_(tensors, scaled)


def group_proxes_(entries: Sequence[tuple[Selected, float, Denominator | None]]) -> None:
    """The group proxes of ``entries`` (``(item, lr * lambda, metric or None)``), in place.

    Weights alike (shape, dtype, device, grouping, metric) are stacked, at most ``STACK`` values
    at a time: on a GPU a weight's own set of about 80 small kernels costs more in launches than
    in memory. DTensors and the Euclidean metric go one by one.
    """
    stacks: dict[tuple, list[tuple[Selected, float, Denominator]]] = {}
    for item, threshold, metric in entries:
        param = item.param
        if metric is None or is_dtensor(param) or metric.second.shape != param.shape:
            _group_prox_(item, threshold, metric)
            continue
        key = (
            param.device,
            param.dtype,
            param.shape,
            item.group_axes,
            metric.take_sqrt,
            metric.second.dtype,
        )
        stacks.setdefault(key, []).append((item, threshold, metric))
    for alike in stacks.values():
        count = max(1, STACK // alike[0][0].param.numel())
        for start in range(0, len(alike), count):
            chunk = alike[start : start + count]
            if len(chunk) == 1:
                _group_prox_(*chunk[0])
            else:
                _stacked_group_proxes_(chunk)


def _group_prox_(item: Selected, threshold: float, metric: Denominator | None) -> None:
    """The group prox of one weight, in place."""
    param = item.param
    axes = item.group_axes
    assert axes is not None
    shard = local(param)
    shape = keepdim_shape(shard, axes)
    squares = group_squares(param, axes).reshape(shape)
    tau = threshold * math.sqrt(item.group_size)
    if metric is None:
        shard.mul_(group_shrink_factor(xp, squares.sqrt(), tau).to(shard.dtype))
        return
    groups = shard_groups(param, axes) if is_dtensor(param) else None

    def group_sums(values: torch.Tensor) -> torch.Tensor:
        sums = values.sum(dim=axes)
        return (sums if groups is None else all_reduce_sum(sums, groups)).reshape(shape)

    z = shard.to(squares.dtype)
    d = metric.full().to(squares.dtype).mul_(metric.scale)
    factor = metric_group_factor(
        xp, z, d, tau, group_sums, squares=squares, early_exit=z.device.type == "cpu"
    )
    shard.copy_((z * factor).to(shard.dtype))


def _stacked_group_proxes_(entries: Sequence[tuple[Selected, float, Denominator]]) -> None:
    """The group proxes of weights of one shape, dtype, device and grouping (plain tensors, each
    with an optimizer metric), stacked: one set of kernels for all of them."""
    first, _, first_metric = entries[0]
    weight = first.param.detach()
    axes = tuple(a + 1 for a in first.group_axes or ())
    dtype = accumulation_dtype(xp, weight.dtype)
    batch = (len(entries),) + (1,) * weight.dim()

    def per_weight(values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype).reshape(batch).to(weight.device)

    params = [item.param.detach() for item, _, _ in entries]
    z = torch.stack(params).to(dtype)
    root = torch.stack([metric.second for _, _, metric in entries])
    if first_metric.take_sqrt:
        root.sqrt_()
    d = root.add_(per_weight([m.shift for _, _, m in entries])).to(dtype)
    d.mul_(per_weight([m.scale for _, _, m in entries]))
    tau = per_weight([t * math.sqrt(item.group_size) for item, t, _ in entries])

    def group_sums(values: torch.Tensor) -> torch.Tensor:
        return values.sum(dim=axes, keepdim=True)

    factor = metric_group_factor(xp, z, d, tau, group_sums, early_exit=z.device.type == "cpu")
    torch._foreach_copy_(params, list(z.mul_(factor).to(weight.dtype).unbind(0)))


def keepdim_shape(tensor: torch.Tensor, axes: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of ``tensor`` with the group axes ``axes`` reduced to 1."""
    return tuple(1 if a in axes else n for a, n in enumerate(tensor.shape))
