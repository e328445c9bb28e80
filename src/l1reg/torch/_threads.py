"""The threads of the compiled CPU loops: blocks of work that a small pool takes one at a time.

The loops release the GIL, so Python threads run them in parallel: as many as
``torch.get_num_threads()`` (the cores torch's own kernels would use). These are not torch's
OpenMP team, whose workers keep spinning for a few ms after each parallel region (libgomp's
default): a helper thread that shares its core with one takes fewer blocks. Blocks have a fixed
size whatever the number of threads, so a sum over them is the same on any number of threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import torch

__all__ = ["BLOCK", "MIN_PER_THREAD", "blocks", "helpers", "run_parallel"]

# Work is shared among threads only when each gets at least this many elements (a thread's
# round trip costs some 50 us; this is ~100 us of work).
MIN_PER_THREAD = 1 << 18
# Larger tensors are cut into blocks of this many elements (a multiple of 4096: no cache line is
# written by two threads, and the compiled sums keep their own blocks), taken one at a time.
BLOCK = 1 << 18


def helpers(total: int, tasks: int) -> int:
    """How many pool threads help the calling one: ``torch.get_num_threads() - 1`` at most."""
    return max(0, min(torch.get_num_threads() - 1, total // MIN_PER_THREAD - 1, tasks - 1))


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


_POOL_LOCK = threading.Lock()
_POOL: tuple[int, int, ThreadPoolExecutor] | None = None


def _pool(workers: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads, made again after a fork (whose child has no threads)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid() or _POOL[1] != workers:
            if _POOL is not None and _POOL[0] == os.getpid():
                _POOL[2].shutdown(wait=False)
            _POOL = (
                os.getpid(),
                workers,
                ThreadPoolExecutor(workers, thread_name_prefix="l1reg-cpu"),
            )
        return _POOL[2]


def _run_tasks(tasks: Iterator[tuple[Callable[..., None], tuple]]) -> None:
    for function, args in tasks:
        function(*args)


def run_parallel(tasks: Sequence[tuple[Callable[..., None], tuple]], helpers: int) -> None:
    """Run ``tasks`` here and in ``helpers`` pool threads, each taking the next task when free.

    Taken one at a time (from one iterator, under the GIL), the tasks go to the threads that
    are free: a thread slowed down by another one on its core (torch's OpenMP workers spin for
    a few ms after each parallel region) takes fewer of them.
    """
    queue = iter(tasks)
    futures: list[Future] = []
    if helpers:
        pool = _pool(helpers)
        futures = [pool.submit(_run_tasks, queue) for _ in range(helpers)]
    try:
        _run_tasks(queue)
    finally:
        for future in futures:
            future.result()
