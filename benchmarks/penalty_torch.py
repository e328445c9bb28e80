"""Speed of the L1 penalty on torch parameters: l1reg against the textbook loop, in one run.

Two parameter sets: a 50-layer MLP of 10 M parameters in 100 tensors (weights 447 x 447 and
biases), and 300 small tensors (16 to 4,096 values each). For each, the median time of

- textbook: ``sum(torch.norm(p, p=1) for p in params)``, the recipe the issue measures;
- per-tensor abs-sum: ``sum(p.abs().sum() for p in params)``, the better loop;
- l1_regularization: ``l1reg.l1_regularization(params, 1.0)``, which finds the tensors in the
  container and dispatches to the fused kernel;
- l1reg.torch.l1_norm: the fused kernel alone (what ``L1Regularizer()`` calls);
- one sum: ``torch.sum`` over one contiguous tensor of the same size (a lower bound);

forward only, and forward + backward (``.backward()`` into ``.grad``, then reset to None as
``zero_grad()`` does, inside the timing).
The variants run in interleaved rounds, so a busy machine slows them alike; ratios are of medians.

Run: ``python benchmarks/penalty_torch.py`` (``--quick`` for fewer rounds, ``--device cuda``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import l1reg
from l1reg.torch import l1_norm


def mlp_parameters(device: torch.device) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    params = []
    for _ in range(50):
        params.append(torch.randn(447, 447, generator=generator))
        params.append(torch.randn(447, generator=generator))
    return [p.to(device).requires_grad_() for p in params]


def small_parameters(device: torch.device) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    sizes = torch.randint(16, 4097, (300,), generator=generator).tolist()
    return [torch.randn(n, generator=generator).to(device).requires_grad_() for n in sizes]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_rounds(functions: dict, device: torch.device, rounds: int) -> dict[str, float]:
    """Median seconds of each function over interleaved rounds (after 3 warm-up calls each)."""
    for function in functions.values():
        for _ in range(3):
            function()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            synchronize(device)
            start = time.perf_counter()
            function()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def variants(params: list[torch.Tensor]) -> dict:
    flat = torch.randn(sum(p.numel() for p in params), device=params[0].device)

    def textbook():
        return sum(torch.norm(p, p=1) for p in params)

    def abs_sum():
        return sum(p.abs().sum() for p in params)

    def fused():
        return l1reg.l1_regularization(params, 1.0)

    def kernel():
        return l1_norm(params)

    def backward(penalty):
        # Each variant drops the gradients it made (zero_grad's set_to_none) inside its own
        # timing, so that the cost of freeing them falls on it, not on the next variant.
        def run():
            penalty().backward()
            for p in params:
                p.grad = None

        return run

    forward = {
        "textbook": textbook,
        "per-tensor abs-sum": abs_sum,
        "l1reg": fused,
        "l1_norm": kernel,
        "one sum": lambda: flat.sum(),
    }
    both = {
        "textbook": backward(textbook),
        "per-tensor abs-sum": backward(abs_sum),
        "l1reg": backward(fused),
        "l1_norm": backward(kernel),
    }
    return {"forward": forward, "forward+backward": both}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="15 rounds instead of 60")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rounds = 15 if args.quick else 60
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(
        f"torch {torch.__version__}, device {device} ({name or platform.machine()}), "
        f"{torch.get_num_threads()} threads, {rounds} interleaved rounds, medians\n"
    )
    print(
        "| parameters | pass | textbook loop | per-tensor abs-sum | l1_regularization "
        "| l1reg.torch.l1_norm | one sum | l1_regularization vs loop | l1_norm vs loop |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, make in (
        ("MLP, 10 M in 100 tensors", mlp_parameters),
        ("300 small tensors", small_parameters),
    ):
        params = make(device)
        for kind, functions in variants(params).items():
            medians = timed_rounds(functions, device, rounds)
            ms = {key: f"{1e3 * value:.2f} ms" for key, value in medians.items()}
            ratio = medians["textbook"] / medians["l1reg"]
            kernel_ratio = medians["textbook"] / medians["l1_norm"]
            print(
                f"| {label} | {kind} | {ms['textbook']} | {ms['per-tensor abs-sum']} "
                f"| {ms['l1reg']} | {ms['l1_norm']} | {ms.get('one sum', '')} "
                f"| {ratio:.2f}x | {kernel_ratio:.2f}x |"
            )


if __name__ == "__main__":
    main()
