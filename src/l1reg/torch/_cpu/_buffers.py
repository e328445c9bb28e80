"""The memory the compiled CPU loops work in: tensors they can read, reusable scratch buffers, the
gradient memory kept between backward passes, and the rows of a job over tensors.

Fresh temporaries the size of a model cost more in page faults than the memory-bound arithmetic
on them, so the loops and the eager fallbacks work in buffers that outlive one call.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence

import torch
from torch.utils.weak import WeakIdKeyDictionary

from .._distributed import PLAIN_TYPES
from . import _threads

__all__ = ["block_rows", "dtype_codes", "gradient_memory", "scratch", "viewable"]

_COMPILED_DTYPES = (torch.float32, torch.float64)
_local = threading.local()


def viewable(tensor: torch.Tensor) -> bool:
    """True for a CPU tensor that the compiled loops can read through a NumPy view."""
    return (
        tensor.dtype in _COMPILED_DTYPES
        and type(tensor) in PLAIN_TYPES
        and tensor.device.type == "cpu"
        and tensor.is_contiguous()
    )


def scratch(device: torch.device, dtype: torch.dtype, size: int, slot: int = 0) -> torch.Tensor:
    """This thread's reusable buffer number ``slot``, of at least ``size`` elements."""
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    key = (device, dtype, slot)
    buffer = buffers.get(key)
    if buffer is None or buffer.numel() < size:
        buffer = buffers[key] = torch.empty(size, device=device, dtype=dtype)
    return buffer


# The gradient memory of each large CPU tensor, kept from one backward pass to the next (see
# gradient_memory). Weak keys: an entry goes with its tensor.
_GRADIENT_STORAGE: WeakIdKeyDictionary = WeakIdKeyDictionary()
_GRADIENT_LOCK = threading.Lock()
_storage_use_count = getattr(torch._C, "_storage_Use_Count", None)


def gradient_memory(tensor: torch.Tensor) -> torch.Tensor:
    """An uninitialised contiguous tensor like ``tensor``, for its gradient.

    The memory of the previous one is reused when nothing else holds it any longer (the usual
    ``zero_grad()`` between steps drops ``.grad``): fresh memory of that size costs page faults,
    measured at more than the whole backward pass. While the tensor lives, its gradient memory
    therefore stays allocated between steps, as it would with ``zero_grad(set_to_none=False)``.
    Memory still held anywhere (``.grad``, a view of it, a saved copy) is never reused.
    """
    if _storage_use_count is None:  # no way to know that the memory is free: keep none
        return torch.empty_like(tensor, memory_format=torch.contiguous_format)
    nbytes = tensor.numel() * tensor.element_size()
    with _GRADIENT_LOCK:
        storage = _GRADIENT_STORAGE.get(tensor)
        if (
            storage is not None
            and storage.nbytes() == nbytes
            and _storage_use_count(storage._cdata) == 1  # only this entry holds it
        ):
            return torch.empty(0, dtype=tensor.dtype).set_(storage, 0, tensor.shape)
        grad = torch.empty_like(tensor, memory_format=torch.contiguous_format)
        _GRADIENT_STORAGE[tensor] = grad.untyped_storage()
        return grad


@functools.cache
def dtype_codes() -> dict[torch.dtype, int]:
    """The codes of float32 and float64 in the rows of a compiled loop's job."""
    from ._jobs import FLOAT32, FLOAT64

    return {torch.float32: FLOAT32, torch.float64: FLOAT64}


def block_rows(
    tensors: Sequence[torch.Tensor],
    paired: Sequence[torch.Tensor] | None = None,
    extra: Sequence[tuple[int, ...]] | None = None,
) -> tuple[list[int], int]:
    """The rows of a compiled loop's job over ``tensors``, in blocks: ``(address, [address in
    the paired tensor,] count, dtype code, [*extra of the tensor])``; and the number of elements.

    ``paired`` (an output, a second moment) are laid out like ``tensors``; ``extra`` holds the
    integers that every row of a tensor carries at its end.
    """
    codes = dtype_codes()
    table: list[int] = []
    sizes = [t.numel() for t in tensors]
    for k, start, stop in _threads.blocks(sizes):
        tensor = tensors[k]
        offset = start * tensor.element_size()
        table.append(tensor.data_ptr() + offset)
        if paired is not None:
            table.append(paired[k].data_ptr() + offset)
        table += (stop - start, codes[tensor.dtype])
        if extra is not None:
            table += extra[k]
    return table, sum(sizes)
