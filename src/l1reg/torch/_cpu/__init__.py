"""The compiled CPU engine of ``l1reg.torch``, behind one entry point: the names of this module.

On the CPU the memory-bound passes of the penalty and of the prox cost more in passes over memory
and in page faults than in arithmetic. This engine reads each tensor once, by loops compiled with
numba (``_kernels``, ``_adam_kernel``) that run as jobs (``_jobs``) on torch's own OpenMP team
(``_threads``), in memory that outlives one call (``_buffers``); ``_fused_adam`` fuses the L1 prox
into Adam's step. The rest of ``l1reg.torch`` imports this package only, never its modules; the
loops (and numba) load at their first use.

Each prox entry point takes what it can and returns what is left for the eager torch code
(``l1reg.torch._eager``), which computes the same thing; tests compare the two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from . import _threads
from ._buffers import block_rows, dtype_codes, gradient_memory, scratch, viewable
from ._fused_adam import ADAMS, FusedAdamStep

__all__ = [
    "ADAMS",
    "FusedAdamStep",
    "gradient_memory",
    "group_proxes_",
    "scratch",
    "shrink_plain_",
    "shrink_scaled_",
    "sign_times_",
    "sum_abs",
    "viewable",
]

# Tensors of at least this many elements are shrunk one by one with in-place kernels (softshrink
# writes its result over its input); below it, multi-tensor calls over the list win.
LARGE = 1 << 15
# Elements per chunk of the scaled step where the compiled loop cannot read the tensor: two
# float32 buffers of 512 KiB fit in L2.
_CHUNK = 1 << 17


def _compiled() -> Any:
    """The compiled loops, imported on first use (numba's import costs a quarter of a second)."""
    from . import _kernels

    return _kernels


def sum_abs(tensors: Sequence[torch.Tensor]) -> float:
    """``sum |t|`` over :func:`viewable` tensors, by the compiled loop."""
    kernels = _compiled()
    table, elements = block_rows(tensors)
    results = np.empty(len(table) // kernels.SUM_ABS_WIDTH)
    _threads.run(
        kernels.sum_abs_work,
        kernels.sum_abs_worker,
        table,
        kernels.SUM_ABS_WIDTH,
        elements,
        results.ctypes.data,
    )
    return float(results.sum())


def sign_times_(
    tensors: Sequence[torch.Tensor], scale: float, outs: Sequence[torch.Tensor]
) -> None:
    """``out = sign(t) * scale`` for :func:`viewable` tensors (``outs`` laid out like them)."""
    kernels = _compiled()
    table, elements = block_rows(tensors, outs)
    value = np.array([scale])
    _threads.run(
        kernels.sign_times_work,
        kernels.sign_times_worker,
        table,
        kernels.SIGN_TIMES_WIDTH,
        elements,
        value.ctypes.data,
    )


def _large(tensor: torch.Tensor) -> bool:
    return tensor.device.type == "cpu" and tensor.numel() >= LARGE


def shrink_plain_(tensors: Sequence[torch.Tensor], thresholds: Sequence[float]) -> list[int]:
    """``x <- sign(x) max(|x| - t, 0)`` in place for the large CPU tensors, by softshrink (one
    pass over memory); returns the indices of the others."""
    rest = []
    for i, (tensor, threshold) in enumerate(zip(tensors, thresholds)):
        if _large(tensor):
            torch._C._nn.softshrink(tensor, threshold, out=tensor)
        else:
            rest.append(i)
    return rest


def shrink_scaled_(
    tensors: Sequence[torch.Tensor], metrics: Sequence[Any], thresholds: Sequence[float]
) -> list[int]:
    """``x <- x - clip(x, -c / D, c / D)`` in place for the large contiguous CPU tensors (``D =
    root + shift`` of each metric, ``c`` its threshold); returns the indices of the others.

    float32/float64 tensors take one compiled pass; other dtypes go through two scratch buffers a
    chunk at a time, so that the temporaries stay in cache.
    """
    rest: list[int] = []
    compiled: list[int] = []
    for i, (tensor, metric) in enumerate(zip(tensors, metrics)):
        second = metric.second
        if not (
            _large(tensor)
            and tensor.is_contiguous()
            and second.is_contiguous()
            and second.dtype == tensor.dtype
        ):
            rest.append(i)
        elif viewable(tensor) and viewable(second):
            compiled.append(i)
        else:
            _shrink_scaled_chunks_(tensor, metric, thresholds[i])
    if compiled:
        _compiled_shrink_scaled_([(tensors[i], metrics[i], thresholds[i]) for i in compiled])
    return rest


def _compiled_shrink_scaled_(rows: Sequence[tuple[torch.Tensor, Any, float]]) -> None:
    kernels = _compiled()
    table, elements = block_rows(
        [tensor for tensor, _, _ in rows],
        [metric.second for _, metric, _ in rows],
        [(int(metric.take_sqrt), k) for k, (_, metric, _) in enumerate(rows)],
    )
    pairs = np.array([(c, metric.shift) for _, metric, c in rows], dtype=np.float64)
    _threads.run(
        kernels.metric_shrink_work,
        kernels.metric_shrink_worker,
        table,
        kernels.METRIC_SHRINK_WIDTH,
        elements,
        pairs.ctypes.data,
    )


def _shrink_scaled_chunks_(tensor: torch.Tensor, metric: Any, threshold: float) -> None:
    values = tensor.view(-1)
    second = metric.second.view(-1)
    size = min(values.numel(), _CHUNK)
    denominator_buffer = scratch(values.device, values.dtype, size, 2)
    scaled_buffer = scratch(values.device, values.dtype, size, 3)
    for start in range(0, values.numel(), size):
        chunk = values[start : start + size]
        n = chunk.numel()
        denominator, scaled = denominator_buffer[:n], scaled_buffer[:n]
        if metric.take_sqrt:
            torch.sqrt(second[start : start + n], out=denominator)
        else:
            denominator.copy_(second[start : start + n])
        denominator.add_(metric.shift)
        torch.mul(chunk, denominator, out=scaled)
        torch._C._nn.softshrink(scaled, threshold, out=scaled)
        torch.div(scaled, denominator, out=chunk)


def group_proxes_(entries: Sequence[tuple[Any, float, Any]], newton_steps: int) -> list[int]:
    """The group proxes in the optimizer's metric of the weights the compiled loop can take, in
    place, one weight a row of a job; returns the indices of the others.

    ``entries`` holds ``(item, threshold, metric)``: the regularized parameter (with its
    ``group_axes`` and ``group_size``), ``lr * lambda``, its metric (None: the Euclidean one, left
    to the eager code). The loop takes a contiguous
    float32/float64 CPU tensor (not a shard: its group norms would need the other ranks) whose
    groups run along a single axis, with a second moment of the same layout.
    """
    rows = []
    rest = []
    for i, (item, threshold, metric) in enumerate(entries):
        local = item.param.detach()
        second = None if metric is None else metric.second
        kept = [a for a in range(local.dim()) if a not in item.group_axes]
        if second is None or not (
            len(kept) == 1
            and viewable(local)
            and viewable(second)
            and second.dtype == local.dtype
            and second.shape == local.shape
        ):
            rest.append(i)
            continue
        g = kept[0]
        shape = (math.prod(local.shape[:g]), local.shape[g], math.prod(local.shape[g + 1 :]))
        rows.append((local, second, shape, metric, threshold * math.sqrt(item.group_size)))
    if rows:
        _compiled_group_proxes_(rows, newton_steps)
    return rest


def _compiled_group_proxes_(rows: Sequence[tuple], newton_steps: int) -> None:
    kernels = _compiled()
    codes = dtype_codes()
    table: list[int] = []
    floats: list[float] = []
    elements = 0
    for local, second, shape, metric, tau in rows:
        table += (
            local.data_ptr(),
            second.data_ptr(),
            *shape,
            codes[local.dtype],
            int(metric.take_sqrt),
            newton_steps,
        )
        floats += (metric.scale, metric.shift, tau)
        elements += local.numel()
    values = np.array(floats, dtype=np.float64)
    _threads.run(
        kernels.group_prox_work,
        kernels.group_prox_worker,
        table,
        kernels.GROUP_PROX_WIDTH,
        elements,
        values.ctypes.data,
    )
