"""The textbook L1 recipe in PyTorch against l1reg.torch, on data where 3 of 10 inputs matter.

The network is Linear(10, 64) - ReLU - Linear(64, 3), trained with cross-entropy and Adam (lr 1e-3,
lambda 0.01) for 3000 full-batch steps. Compared, in one run and from the same initial weights:

- textbook: ``loss + lambda * sum(torch.norm(p, p=1) for p in weights)``;
- prox, plain threshold: soft-threshold ``lr * lambda`` after each Adam step;
- ProximalL1: soft-threshold in Adam's metric (l1reg.torch.ProximalL1, plain L1);
- ProximalL1, groups="input": the group penalty on the input columns of both layers (the
  second layer's inputs are the hidden neurons, so it prunes them too);
- ProximalL1, groups="input", first layer: the group penalty on the input columns of the first
  layer only (``include="0.weight"``): feature selection.

For each: weights exactly zero (of 832), irrelevant inputs removed (of 7), relevant inputs kept
(of 3), test accuracy, on 1,000 training samples (``--samples``). Run:
``python benchmarks/textbook_torch.py`` (``--quick``: 1000 steps).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from l1reg.torch import L1Regularizer, ProximalL1, selected_features, sparsity

RELEVANT = (0, 1, 2)


def make_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """10 standard normal inputs; the class (of 3) depends on inputs 0, 1 and 2 only."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=generator)
    scores = torch.stack([x[:, 0] + x[:, 1], x[:, 1] - x[:, 2], x[:, 2] * x[:, 0]], dim=1)
    return x, scores.argmax(dim=1)


def make_model(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 3))


def train(
    recipe: str, steps: int, samples: int = 1000, seed: int = 0, lr: float = 1e-3, lam: float = 0.01
) -> dict:
    x, y = make_data(samples, seed=1)
    x_test, y_test = make_data(2000, seed=2)
    model = make_model(seed)
    weights = [model[0].weight, model[2].weight]
    adam = torch.optim.Adam(model.parameters(), lr=lr)
    optimizer: torch.optim.Optimizer = adam
    if recipe == "prox, plain threshold":
        optimizer = ProximalL1(adam, L1Regularizer(model, lam), metric="plain")
    elif recipe == "ProximalL1":
        optimizer = ProximalL1(adam, L1Regularizer(model, lam))
    elif recipe == 'ProximalL1, groups="input"':
        optimizer = ProximalL1(adam, L1Regularizer(model, lam, groups="input"))
    elif recipe == 'ProximalL1, groups="input", first layer':
        # Feature selection proper: the group penalty on the input columns of the first layer.
        optimizer = ProximalL1(adam, L1Regularizer(model, lam, groups="input", include="0.weight"))
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        if recipe == "textbook":
            loss = loss + lam * sum(torch.norm(p, p=1) for p in weights)
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    kept = set(selected_features(model))
    report = sparsity(model)
    return {
        "recipe": recipe,
        "zeros": report.zeros,
        "weights": report.size,
        "irrelevant removed": sum(1 for i in range(10) if i not in RELEVANT and i not in kept),
        "relevant kept": sum(1 for i in RELEVANT if i in kept),
        "accuracy": accuracy,
        "seconds": seconds,
    }


RECIPES = (
    "textbook",
    "prox, plain threshold",
    "ProximalL1",
    'ProximalL1, groups="input"',
    'ProximalL1, groups="input", first layer',
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1000 steps instead of 3000")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--samples", type=int, default=1000, help="training samples")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or (1000 if args.quick else 3000)
    rows = [train(recipe, steps, args.samples) for recipe in RECIPES]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {steps} full-batch Adam "
        f"steps on {args.samples:,} samples, lr 1e-3, lambda 0.01; test accuracy on 2,000 new "
        "samples\n"
    )
    print(
        "| recipe | weights exactly zero | irrelevant inputs removed | relevant kept "
        "| test accuracy | training time |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['recipe']} | {row['zeros']} / {row['weights']} "
            f"| {row['irrelevant removed']} / 7 | {row['relevant kept']} / 3 "
            f"| {100 * row['accuracy']:.1f} % | {row['seconds']:.1f} s |"
        )


if __name__ == "__main__":
    main()
