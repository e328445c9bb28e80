"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch CPU thread for a module of small-tensor tests.

    Small tensors run fastest on one thread, and on a busy machine a second intra-op thread that
    waits for a core can make each step 100x slower.
    """
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
