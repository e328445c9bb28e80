"""l1reg.torch under DistributedDataParallel and FSDP2, on 2 CPU processes with the gloo backend.

Each distributed run is compared, step by step, with a single-process run of the same model on the
whole batch: the penalty value (global under FSDP2, where each rank holds half of every weight),
and the weights after each ProximalL1 step.
"""

from __future__ import annotations

import os
import socket
import sys
import traceback

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

if not dist.is_available() or not dist.is_gloo_available():  # pragma: no cover
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

from torch import nn  # noqa: E402

from l1reg.torch import L1Regularizer, ProximalL1, sparsity  # noqa: E402

WORLD = 2
STEPS = 4


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _model() -> nn.Module:
    torch.manual_seed(0)
    # 5 rows in the first layer: uneven shards under FSDP2 (3 + 2 rows).
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(16, 6, generator=generator)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


CASES = [
    # (optimizer, lambda, groups, prox or loss)
    ("adam", 0.05, None, "prox"),
    ("adam", 0.05, "input", "prox"),
    ("sgd", 0.2, "output", "prox"),
    ("sgd", 0.05, None, "loss"),
    ("sgd", 0.05, "input", "loss"),
]


def _optimizer(name: str, model: nn.Module) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=0.05)
    return torch.optim.SGD(model.parameters(), lr=0.1)


def _trajectory(model, x, y, case, rank=0, world=1):
    """Penalty values and weights (full tensors) after each step, for one case."""
    name, lam, groups, mode = case
    reg = L1Regularizer(model, lam, groups=groups)
    inner = _optimizer(name, model)
    opt = ProximalL1(inner, reg) if mode == "prox" else inner
    # Each rank takes its contiguous share of the batch; the mean loss of each share averaged
    # over ranks is the mean over the whole batch.
    share = x.shape[0] // world
    xs, ys = x[rank * share : (rank + 1) * share], y[rank * share : (rank + 1) * share]
    values, weights = [], []
    for _ in range(STEPS):
        opt.zero_grad()
        penalty = reg()
        values.append(penalty.item())
        loss = nn.functional.cross_entropy(model(xs), ys)
        if mode == "loss":
            loss = loss + penalty
        loss.backward()
        opt.step()
        weights.append([_full(p).detach().tolist() for _, p in reg.named_parameters()])
    return values, weights, sparsity(model).zeros


def _full(param):
    return param.full_tensor() if hasattr(param, "full_tensor") else param


def _worker(rank: int, port: int, kind: str, queue) -> None:
    try:
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        os.environ["MASTER_PORT"] = str(port)
        torch.set_num_threads(1)
        dist.init_process_group("gloo", rank=rank, world_size=WORLD)
        x, y = _data()
        results = []
        for case in CASES:
            model = _model()
            if kind == "ddp":
                wrapped = nn.parallel.DistributedDataParallel(model)
                results.append(_trajectory_ddp(wrapped, model, x, y, case, rank))
            else:
                from torch.distributed.device_mesh import init_device_mesh
                from torch.distributed.fsdp import fully_shard

                mesh = init_device_mesh("cpu", (WORLD,))
                for layer in model:
                    if isinstance(layer, nn.Linear):
                        fully_shard(layer, mesh=mesh)
                fully_shard(model, mesh=mesh)
                results.append(_trajectory(model, x, y, case, rank, WORLD))
        queue.put((rank, results, None))
    except Exception:  # pragma: no cover - reported to the parent
        queue.put((rank, None, traceback.format_exc()))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _trajectory_ddp(wrapped, model, x, y, case, rank):
    name, lam, groups, mode = case
    reg = L1Regularizer(model, lam, groups=groups)
    inner = _optimizer(name, wrapped)
    opt = ProximalL1(inner, reg) if mode == "prox" else inner
    share = x.shape[0] // WORLD
    xs, ys = x[rank * share : (rank + 1) * share], y[rank * share : (rank + 1) * share]
    values, weights = [], []
    for _ in range(STEPS):
        opt.zero_grad()
        penalty = reg()
        values.append(penalty.item())
        loss = nn.functional.cross_entropy(wrapped(xs), ys)
        if mode == "loss":
            loss = loss + penalty
        loss.backward()
        opt.step()
        weights.append([p.detach().tolist() for _, p in reg.named_parameters()])
    return values, weights, sparsity(model).zeros


def _run(kind: str):
    context = torch.multiprocessing.get_context("spawn")
    queue = context.Queue()
    port = _free_port()
    processes = [
        context.Process(target=_worker, args=(rank, port, kind, queue)) for rank in range(WORLD)
    ]
    for process in processes:
        process.start()
    outcomes = {}
    try:
        for _ in range(WORLD):
            rank, results, error = queue.get(timeout=120)
            if error is not None:
                pytest.fail(f"rank {rank} failed:\n{error}")
            outcomes[rank] = results
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():  # pragma: no cover
                process.kill()
    return outcomes


@pytest.fixture(scope="module")
def reference():
    x, y = _data()
    torch.set_num_threads(1)
    return [_trajectory(_model(), x, y, case) for case in CASES]


@pytest.mark.parametrize("kind", ["ddp", "fsdp2"])
def test_matches_single_process_step_by_step(kind, reference):
    if kind == "fsdp2":
        pytest.importorskip("torch.distributed.fsdp")
    outcomes = _run(kind)
    for rank in range(WORLD):
        for case, (values, weights, zeros), (ref_values, ref_weights, ref_zeros) in zip(
            CASES, outcomes[rank], reference
        ):
            # The penalty is the global one on every rank.
            torch.testing.assert_close(
                torch.tensor(values),
                torch.tensor(ref_values),
                rtol=1e-5,
                atol=1e-6,
                msg=lambda m, case=case: f"{kind} {case}: penalty values differ: {m}",
            )
            for step, (got, want) in enumerate(zip(weights, ref_weights)):
                for g, w in zip(got, want):
                    torch.testing.assert_close(
                        torch.tensor(g),
                        torch.tensor(w),
                        rtol=1e-4,
                        atol=1e-5,
                        msg=lambda m, case=case, step=step: f"{kind} {case} step {step}: {m}",
                    )
            assert zeros == ref_zeros
    # The cases make exact zeros, and the distributed runs find the same ones.
    assert any(ref_zeros > 0 for _, _, ref_zeros in reference)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
