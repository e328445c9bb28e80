"""Where the compiled CPU loops run: on torch's own OpenMP team, or in the calling thread.

torch runs its CPU kernels on an OpenMP team of ``torch.get_num_threads()`` threads, whose
workers keep spinning for a while after each parallel region, waiting for the next one. Threads of
our own lose to them: on a core where a worker spins, a Python helper thread ran slower than the
calling thread alone (the 2-core machine of ``benchmarks/prox_torch.py``: no gain from a second
thread, where the same kernel on an idle machine gained 15-20 %). So the loops join that team:
``GOMP_parallel`` of the OpenMP runtime that torch loaded (libgomp, or the GNU entry points of
Intel's and LLVM's runtimes) calls a kernel's C entry point on each of its threads, and the
threads take rows of the job (:mod:`._jobs`) until none is left. Where that runtime cannot be
found (no ``/proc/self/maps``, another parallel backend, several candidates), where the work is
too small to share, or in a forked child process, the job runs in the calling thread. (GNU
OpenMP is not fork-safe: a child of a process that ran a parallel region hangs in its next one,
as torch's own kernels do there.)

Rows have a fixed size whatever the number of threads, so a sum over them is the same on any
number of threads.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
from collections.abc import Callable, Sequence

import torch

__all__ = ["BLOCK", "MIN_PER_THREAD", "blocks", "run", "team"]

# Work is shared among threads only when each gets at least this many elements (~100 us of work).
MIN_PER_THREAD = 1 << 18
# Larger tensors are cut into blocks of this many elements (a multiple of 4096: no cache line is
# written by two threads, and the compiled sums keep their own blocks).
BLOCK = 1 << 18

_OPENMP_LIBRARY = re.compile(r"/lib(?:gomp|iomp5|omp)[^/]*\.so[^/]*$")


def blocks(sizes: Sequence[int]) -> list[tuple[int, int, int]]:
    """``(tensor index, start, stop)``: the tensors of ``sizes`` in blocks of ``BLOCK`` at most.

    A tensor no larger than a block is one block (an empty one too: its step count goes up).
    """
    cut = []
    for k, n in enumerate(sizes):
        if n <= BLOCK:
            cut.append((k, 0, n))
        else:
            cut += [(k, start, min(start + BLOCK, n)) for start in range(0, n, BLOCK)]
    return cut


_FORKED = False


def _forked() -> None:
    global _FORKED
    _FORKED = True


os.register_at_fork(after_in_child=_forked)


@functools.cache
def team() -> Callable[..., None] | None:
    """``GOMP_parallel`` of the OpenMP runtime that runs torch's CPU kernels, or None."""
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    try:
        with open("/proc/self/maps") as maps:
            loaded = {
                line.rstrip("\n").split(maxsplit=5)[-1]
                for line in maps
                if _OPENMP_LIBRARY.search(line)
            }
    except OSError:
        return None
    # torch's own copy (torch/lib or torch.libs) where several are loaded (scikit-learn has one)
    home = os.path.dirname(torch.__file__)
    own = {p for p in loaded if p.startswith((home + os.sep, home + ".libs" + os.sep))}
    candidates = own or loaded
    if len(candidates) != 1:
        return None
    try:
        parallel = ctypes.CDLL(candidates.pop()).GOMP_parallel
    except (OSError, AttributeError):
        return None
    parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    parallel.restype = None
    return parallel


def run(work, worker, table: list[int], width: int, elements: int, aux: int = 0) -> None:
    """Run the job of the rows in ``table`` (``elements`` values in all) on torch's team.

    ``work`` is the kernel's compiled function of the job's address, ``worker`` its C entry point.
    """
    from ._jobs import new_job

    job = new_job(table, width, aux)
    threads = min(torch.get_num_threads(), elements // MIN_PER_THREAD, len(table) // width)
    parallel = team() if threads > 1 and not _FORKED else None
    if parallel is None:
        work(job.ctypes.data)
    else:
        parallel(worker.address, job.ctypes.data, threads, 0)
