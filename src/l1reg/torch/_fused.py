"""The fused L1 sum over many torch tensors: the fast path of :func:`l1reg.l1_regularization`.

A Python loop of ``torch.norm(p, 1)`` pays, per tensor, a slow norm kernel, an autograd node and a
backward kernel. Here the whole list is one custom autograd node:

- forward: ``|p|`` is written into small scratch buffers that are reused from call to call (kept
  per thread, device and dtype), and each buffer is summed once per filling. Small tensors are
  gathered into one buffer by a single ``torch.cat(..., out=)`` per filling; on the CPU, large
  ones are written into the other by ``torch.abs(p, out=)``, one kernel each. A fresh ``abs()``
  per tensor would allocate as much memory as the model has parameters at every call, and large
  fresh allocations cost page faults on the CPU; a buffer of 1 MiB stays in cache. On CUDA every
  tensor is gathered (kernel launches cost more there than copies).
- backward: ``sign(p) * grad`` with two multi-tensor (``torch._foreach_*``) calls, on the CPU per
  bucket of about 1 MiB, so that the multiplication finds the signs still in cache.
- on the CPU, large contiguous float32/float64 tensors skip both: the compiled loops of
  :mod:`._cpu` read each one once, forward and backward, on torch's own threads. Small ones
  stay with ``cat``: a row of the compiled job costs about 1 us of Python a tensor, more than
  their share of one ``cat``. The backward writes each gradient into
  the memory of that tensor's previous gradient once nothing holds it any more, instead of fresh
  memory, whose page faults cost more than the pass (``_cpu.gradient_memory``).

``sum`` is used, never ``torch.norm(p, 1)`` / ``linalg.vector_norm``: on the CPU those keep one
float32 running sum per thread and stop growing at 2**24, while ``sum`` reduces pairwise (cascade)
and stays exact there. float16/bfloat16 values are widened to float32 in the buffer, so their sum is
accumulated in float32.

Under ``torch.compile`` the plain differentiable form ``p.abs().sum()`` is used instead: the
compiler fuses it into one reduction without temporaries. DTensor parameters (FSDP2) are summed on
their local shards and the local sums are all-reduced over the mesh dimensions that shard them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import array_api_compat.torch as xp
import torch

from .._numerics import BLOCK, accumulation_dtype
from .._validation import Checked, declare_params, invalid_parameter, shown
from . import _cpu
from ._cpu import gradient_memory, scratch, viewable
from ._distributed import PLAIN_TYPES, all_reduce_sum, is_dtensor, shard_groups

__all__ = ["l1_norm"]

# Elements in the scratch buffer of a CPU device: 1 MiB of float32 stays in the L2 cache of a core.
# On CUDA, kernel launches cost more than memory, so the buffer is larger (at most 64 MiB).
_CPU_SCRATCH = 1 << 18
_CUDA_SCRATCH = 1 << 24
# On the CPU, tensors under this many elements are gathered with one cat per bucket; larger ones
# get an abs kernel of their own (a cat would copy them once more).
_CPU_SMALL = 1 << 14
# Elements per multi-tensor call in the backward pass: 1 MiB of float32 (a core's L2 cache).
_BACKWARD_BUCKET = 1 << 18


class _Gather:
    """Small tensors, concatenated into a scratch buffer and summed once per filling."""

    def __init__(self, buffer: torch.Tensor, partials: list[torch.Tensor]) -> None:
        self.buffer, self.partials = buffer, partials
        self.pending: list[torch.Tensor] = []
        self.size = 0

    def add(self, flat: torch.Tensor) -> None:
        n = flat.numel()
        if self.size + n > self.buffer.numel():
            self.flush()
        self.pending.append(flat)
        self.size += n

    def flush(self) -> None:
        if self.pending:
            region = self.buffer[: self.size]
            torch.cat(self.pending, out=region)
            self.partials.append(region.abs_().sum())
            self.pending, self.size = [], 0


class _Write:
    """Large tensors, written as ``|p|`` into a scratch buffer by one kernel each."""

    def __init__(self, buffer: torch.Tensor, partials: list[torch.Tensor]) -> None:
        self.buffer, self.partials = buffer, partials
        self.size = 0

    def add(self, flat: torch.Tensor) -> None:
        capacity = self.buffer.numel()
        for piece in flat.split(capacity) if flat.numel() > capacity else (flat,):
            m = piece.numel()
            if self.size + m > capacity:
                self.flush()
            region = self.buffer[self.size : self.size + m]
            if piece.dtype == region.dtype:
                torch.abs(piece, out=region)
            else:  # abs(out=) cannot change the dtype: widen first, then abs in place
                region.copy_(piece).abs_()
            self.size += m

    def flush(self) -> None:
        if self.size:
            self.partials.append(self.buffer[: self.size].sum())
            self.size = 0


def _sum_abs_same_device(tensors: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """``sum |t|`` over tensors of one device, accumulated in ``dtype`` (no autograd)."""
    device = tensors[0].device
    on_cpu = device.type == "cpu"
    capacity = _CPU_SCRATCH if on_cpu else _CUDA_SCRATCH
    small = _CPU_SMALL if on_cpu else capacity
    total = 0
    for tensor in tensors:
        total += tensor.numel()
    partials: list[torch.Tensor] = []
    compiled: list[torch.Tensor] = []  # read by the compiled loop
    size = min(capacity, max(total, 1))
    gather = _Gather(
        scratch(device, dtype, min(size, _CPU_SMALL * 4) if on_cpu else size, 0), partials
    )
    write = _Write(scratch(device, dtype, size, 1), partials) if on_cpu else None
    for tensor in tensors:
        n = tensor.numel()
        if n == 0:
            continue
        if tensor.is_complex():  # |z| has another dtype than z: no buffer of z's dtype fits
            partials.append(tensor.abs().sum(dtype=dtype))
            continue
        if write is not None and n >= small and viewable(tensor):
            compiled.append(tensor)
            continue
        flat = tensor if tensor.dim() == 1 else tensor.reshape(-1)
        if write is not None and n >= small:
            write.add(flat)
        elif n > gather.buffer.numel():
            for piece in flat.split(gather.buffer.numel()):
                gather.add(piece)
        else:
            gather.add(flat)
    gather.flush()
    if write is not None:
        write.flush()
    if compiled:
        partials.append(torch.tensor(_cpu.sum_abs(compiled), dtype=dtype))
    if not partials:
        return torch.zeros((), device=device, dtype=dtype)
    if len(partials) == 1:
        return partials[0]
    return torch.stack(partials).sum()


def _sum_abs(tensors: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    devices = {t.device for t in tensors}
    if len(devices) == 1:
        return _sum_abs_same_device(tensors, dtype)
    device = tensors[0].device
    totals = [
        _sum_abs_same_device([t for t in tensors if t.device == d], dtype).to(device)
        for d in devices
    ]
    return torch.stack(totals).sum()


def _signs_times(
    tensors: Sequence[torch.Tensor],
    indices: list[int],
    scale: torch.Tensor,
    grads: list[torch.Tensor | None],
) -> None:
    signs = torch._foreach_sign([tensors[i] for i in indices])
    torch._foreach_mul_(signs, scale)
    for i, sign in zip(indices, signs):
        grads[i] = sign


class _L1Norm(torch.autograd.Function):
    """sum_i |p_i| over every element of every tensor, with one backward node for all of them."""

    @staticmethod
    def forward(ctx, dtype: torch.dtype, *tensors: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(*tensors)
        return _sum_abs(tensors, dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        tensors = ctx.saved_tensors
        grads: list[torch.Tensor | None] = [None] * len(tensors)
        real, complex_ = [], []
        # The compiled loop gives a gradient that does not depend on grad_output through
        # autograd: not for double backward (create_graph=True runs this with grad mode on).
        compiled = (
            grad_output.device.type == "cpu"
            and grad_output.numel() == 1
            and not torch.is_grad_enabled()
        )
        inputs, outs = [], []
        for i, needs in enumerate(ctx.needs_input_grad[1:]):
            if not needs:
                continue
            tensor = tensors[i]
            if compiled and tensor.numel() >= _CPU_SMALL and viewable(tensor):
                grads[i] = grad = gradient_memory(tensor)
                inputs.append(tensor)
                outs.append(grad)
            else:
                (complex_ if tensor.is_complex() else real).append(i)
        if inputs:
            _cpu.sign_times_(inputs, float(grad_output), outs)
        # d|p|/dp = sign(p), and sign(0) = 0: the minimum-norm subgradient at zero. On the CPU
        # the tensors go in buckets of about a cache's size, so that the multiplication finds
        # the signs still in cache; elsewhere all in one (kernel launches cost more there).
        limit = _BACKWARD_BUCKET if grad_output.device.type == "cpu" else math.inf
        bucket: list[int] = []
        size = 0
        for i in real:
            bucket.append(i)
            size += tensors[i].numel()
            if size >= limit:
                _signs_times(tensors, bucket, grad_output, grads)
                bucket, size = [], 0
        if bucket:
            _signs_times(tensors, bucket, grad_output, grads)
        for i in complex_:
            grads[i] = torch.sgn(tensors[i]) * grad_output
        return (None, *grads)


def _compiled_form(tensors: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """The differentiable form that torch.compile fuses: blocked sums of ``|p|`` in ``dtype``."""
    partials = []
    for tensor in tensors:
        flat = tensor.reshape(-1)
        n = flat.numel()
        head = (n // BLOCK) * BLOCK
        if head:
            rows = flat[:head].reshape(-1, BLOCK).abs().sum(dim=1, dtype=dtype)
            partials.append(rows.sum())
        if head < n:
            partials.append(flat[head:].abs().sum(dtype=dtype))
    if not partials:
        return torch.zeros((), dtype=dtype, device=tensors[0].device if tensors else None)
    return torch.stack(partials).sum()


def _local_l1_norm(tensors: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    if not all(t.is_floating_point() or t.is_complex() for t in tensors):
        tensors = [t if t.is_floating_point() or t.is_complex() else t.to(dtype) for t in tensors]
    if torch.compiler.is_compiling():
        return _compiled_form(tensors, dtype)
    return _L1Norm.apply(dtype, *tensors)


_TENSORS = "a tensor or an iterable of tensors"


@declare_params(
    "l1_norm",
    tensors=[Checked(_TENSORS, lambda valid: ["abc", 1.5, None, [1.0, 2.0], [*valid, "x"]])],
)
def l1_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``sum |p|`` over every tensor, as one differentiable 0-d tensor.

    Summed in float32 for float16/bfloat16 inputs; the result has the widest accumulation dtype.
    DTensors (FSDP2 parameters) give the global sum on every rank.
    """
    given = tensors
    if isinstance(tensors, torch.Tensor):
        tensors = [tensors]
    elif isinstance(tensors, (str, bytes)) or not isinstance(tensors, Iterable):
        raise TypeError(invalid_parameter("tensors", "l1_norm", _TENSORS, tensors))
    tensors = list(tensors)
    for i, tensor in enumerate(tensors):
        if not isinstance(tensor, torch.Tensor):
            message = invalid_parameter("tensors", "l1_norm", _TENSORS, given)
            raise TypeError(f"{message} Item {i} is {shown(tensor)}.")
    if not tensors:
        return torch.zeros(())
    dtype = _widest({accumulation_dtype(xp, d) for d in {t.dtype for t in tensors}})
    if all(type(t) in PLAIN_TYPES for t in tensors):
        return _local_l1_norm(tensors, dtype)
    plain = [t for t in tensors if not is_dtensor(t)]
    total = _local_l1_norm(plain, dtype) if plain else None
    # DTensors: local sums, grouped by the process groups that shard them, all-reduced once per
    # group of tensors sharded alike.
    sharded: dict[tuple[int, ...], tuple[list[object], list[torch.Tensor]]] = {}
    for tensor in tensors:
        if is_dtensor(tensor):
            groups = shard_groups(tensor)
            key = tuple(id(g) for g in groups)
            sharded.setdefault(key, (groups, []))[1].append(tensor.to_local())
    for groups, locals_ in sharded.values():
        local = _local_l1_norm(locals_, dtype)
        if total is not None:
            local = local.to(total.device)
        reduced = all_reduce_sum(local, groups)
        total = reduced if total is None else total + reduced
    assert total is not None
    return total


def _widest(dtypes: set[torch.dtype]) -> torch.dtype:
    if len(dtypes) == 1:
        return next(iter(dtypes))
    ordered = sorted(dtypes, key=str)
    result = ordered[0]
    for dtype in ordered[1:]:
        result = torch.promote_types(result, dtype)
    return result
