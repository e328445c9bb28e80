"""Cost of ProximalL1's proximal step against a fused Adam step and F.softshrink, in one run.

The model is the 50-layer MLP of the penalty benchmark (Linear(447, 447) x 50: 10 M parameters
in 100 tensors), all weights penalized. Timed, as medians of interleaved rounds:

- Adam step: ``torch.optim.Adam(fused=True).step()`` on random gradients (the peer: the prox
  should cost a small fraction of it);
- softshrink: ``F.softshrink(w, t)`` on every weight, out of place (the bar: one kernel per tensor);
- prox, SGD: ``ProximalL1.prox_step()`` after SGD, threshold ``lr * lambda``;
- prox, Adam metric: ``ProximalL1.prox_step()`` after Adam, threshold ``lr * lambda / D_i``;
- prox, groups="input": the group prox after Adam (block soft-thresholding of input columns);
- Adam step (default): ``torch.optim.Adam().step()`` (foreach=None: on the CPU, tensor by tensor);
- ProximalL1 step, fused: the whole ``ProximalL1(Adam(fused=True), reg).step()``, the prox fused
  into Adam's step for the weights (one pass over memory; the biases take torch's fused step);
- ProximalL1 step, fused=False: the same, Adam's step then the separate proximal pass.

The prox overhead of a whole step is ``(ProximalL1 step - Adam step) / Adam step``, printed against
both Adam steps.

Run: ``python benchmarks/prox_torch.py`` (``--quick`` for fewer rounds, ``--device cuda``,
``--steps`` for the whole steps only).
"""

from __future__ import annotations

import argparse
import math
import platform

import torch
from penalty_torch import timed_rounds
from torch import nn

from l1reg.torch import L1Regularizer, ProximalL1


def mlp(device: torch.device) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Linear(447, 447) for _ in range(50)]).to(device)


def with_gradients(model: nn.Module) -> None:
    generator = torch.Generator().manual_seed(1)
    for param in model.parameters():
        param.grad = torch.randn(param.shape, generator=generator).to(param.device) * 1e-3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="15 rounds instead of 60")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--steps", action="store_true", help="time the whole steps only (no separate prox rows)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rounds = 15 if args.quick else 60
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()

    adam_model = mlp(device)
    with_gradients(adam_model)
    adam = torch.optim.Adam(adam_model.parameters(), lr=1e-3, fused=True)

    sgd_model = mlp(device)
    with_gradients(sgd_model)
    sgd_prox = ProximalL1(
        torch.optim.SGD(sgd_model.parameters(), lr=1e-3), L1Regularizer(sgd_model, 1e-2)
    )

    metric_model = mlp(device)
    with_gradients(metric_model)
    metric_prox = ProximalL1(
        torch.optim.Adam(metric_model.parameters(), lr=1e-3, fused=True),
        L1Regularizer(metric_model, 1e-2),
    )
    metric_prox.optimizer.step()  # creates Adam's state; prox_step alone is timed below

    group_model = mlp(device)
    with_gradients(group_model)
    group_prox = ProximalL1(
        torch.optim.Adam(group_model.parameters(), lr=1e-3, fused=True),
        L1Regularizer(group_model, 1e-4, groups="input"),
    )
    group_prox.optimizer.step()

    default_model = mlp(device)
    with_gradients(default_model)
    default_adam = torch.optim.Adam(default_model.parameters(), lr=1e-3)

    steps = {}
    for fused in (None, False):
        model = mlp(device)
        with_gradients(model)
        steps[fused] = ProximalL1(
            torch.optim.Adam(model.parameters(), lr=1e-3, fused=True),
            L1Regularizer(model, 1e-2),
            fused=fused,
        )

    weights = [layer.weight.detach() for layer in mlp(device)]
    functions = {
        "Adam step (fused)": adam.step,
        "Adam step (default)": default_adam.step,
        "ProximalL1 step, fused": steps[None].step,
        "ProximalL1 step, fused=False": steps[False].step,
    }
    functions |= (
        {}
        if args.steps
        else {
            "softshrink": lambda: [nn.functional.softshrink(w, 1e-5) for w in weights],
            "prox, SGD": sgd_prox.prox_step,
            "prox, Adam metric": metric_prox.prox_step,
            'prox, groups="input"': group_prox.prox_step,
        }
    )
    medians = timed_rounds(functions, device, rounds)
    adam_ms = medians["Adam step (fused)"]
    shrink_ms = medians.get("softshrink", math.nan)
    print(
        f"torch {torch.__version__}, device {device} ({name or platform.machine()}), "
        f"{torch.get_num_threads()} threads, {rounds} interleaved rounds, medians; "
        "50-layer MLP, 10 M parameters in 100 tensors\n"
    )
    print("| step | median | vs fused Adam step | vs softshrink |")
    print("| --- | --- | --- | --- |")
    for label, seconds in medians.items():
        versus = "-" if math.isnan(shrink_ms) else f"{seconds / shrink_ms:.2f}x"
        print(f"| {label} | {1e3 * seconds:.2f} ms | {100 * seconds / adam_ms:.0f} % | {versus} |")
    default_ms = medians["Adam step (default)"]
    print("\n| whole step | prox overhead vs fused Adam | vs default Adam |")
    print("| --- | --- | --- |")
    for label in ("ProximalL1 step, fused", "ProximalL1 step, fused=False"):
        seconds = medians[label]
        print(
            f"| {label} | {100 * (seconds - adam_ms) / adam_ms:+.0f} % "
            f"| {100 * (seconds - default_ms) / default_ms:+.0f} % |"
        )


if __name__ == "__main__":
    main()
