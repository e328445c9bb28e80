"""Job tables: the rows of work that compiled CPU loops take one at a time, from any thread.

A job is one int64 array: ``[next row, number of rows, aux, row 0, row 1, ...]``, each row
``width`` integers (addresses of tensor memory, element counts, a dtype code), ``aux`` an address
that the kernel interprets (where the results go, a scale). A thread takes the next row with an
atomic increment of the first entry until none is left, so the same job runs as it is in the
calling thread, or at once on every thread of an OpenMP team (:mod:`._threads`), which calls the
C entry point ``worker(job)`` of a kernel on each of its threads.

Importing this module imports numba, not torch. The addresses are the caller's promise: the
tensors they point into are alive and large enough until the job returns.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["FLOAT32", "FLOAT64", "address_of", "pointer", "rows", "take", "view"]

# dtype codes in the rows
FLOAT32, FLOAT64 = 0, 1
_HEADER = 3


@intrinsic
def pointer(typingctx, address):
    """The integer ``address`` as a ``void *``, for ``numba.carray``."""
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(address), codegen


@intrinsic
def address_of(typingctx, data):
    """A ``void *`` as an int64 (the argument of a C entry point)."""
    if data != types.voidptr:
        return None

    def codegen(context, builder, signature, args):
        return builder.ptrtoint(args[0], ir.IntType(64))

    return types.int64(data), codegen


@intrinsic
def _fetch_add(typingctx, address, value):
    """Atomically add ``value`` to the int64 at ``address``; the value before."""
    if not (isinstance(address, types.Integer) and isinstance(value, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        target = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        return builder.atomic_rmw("add", target, args[1], "monotonic")

    return types.int64(types.int64, types.int64), codegen


@numba.njit(cache=True, nogil=True)
def view(address, shape, dtype):  # pragma: no cover - compiled
    """The memory at ``address`` as a C-ordered array of ``shape`` and ``dtype`` (a NumPy
    scalar type, passed as an argument: one compiled version per dtype)."""
    return numba.carray(pointer(address), shape, dtype)


@numba.njit(cache=True, nogil=True)
def rows(job, width):  # pragma: no cover - compiled
    """The rows of the job at address ``job`` (an int64 2-d array) and its ``aux`` entry."""
    head = numba.carray(pointer(job), (_HEADER,), np.int64)
    table = numba.carray(pointer(job + 8 * _HEADER), (head[1], width), np.int64)
    return table, head[2]


@numba.njit(cache=True, nogil=True)
def take(job, count):  # pragma: no cover - compiled
    """The index of the next row nobody has taken, or -1 when all ``count`` are taken."""
    k = _fetch_add(job, 1)
    return k if k < count else -1


def new_job(table: list[int], width: int, aux: int = 0) -> np.ndarray:
    """The job array of the rows in ``table`` (flat, ``width`` per row)."""
    return np.array([0, len(table) // width, aux, *table], dtype=np.int64)
