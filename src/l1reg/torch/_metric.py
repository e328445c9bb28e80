r"""The metric in which a torch optimizer stepped, read from its state: ``D`` of the prox.

The optimizer's step is ``lr / D_i`` times its gradient estimate, coordinate by coordinate; the
prox of ``lambda ||w||_1`` in that metric soft-thresholds ``w_i`` at ``lr * lambda / D_i`` (see
:class:`l1reg.torch.ProximalL1`). ``D_i`` is the optimizer's own denominator: ``sqrt(v_hat_i) +
eps`` (Adam, AdamW, NAdam, RAdam, ``max_exp_avg_sq`` with ``amsgrad``), ``u_i + eps`` (Adamax),
``sqrt(sum_i) + eps`` (Adagrad, whose learning rate decays), ``sqrt(square_avg_i - grad_avg_i^2)
+ eps`` (RMSprop, centered or not); 1 for any optimizer without a second moment (SGD).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ._distributed import local

__all__ = ["Denominator", "as_float", "denominator", "steps"]


def as_float(value: Any) -> float:
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)


class Denominator:
    """The optimizer's per-coordinate denominator for one parameter: ``D = scale * (root + shift)``.

    ``root`` is ``sqrt(second)`` or ``second`` itself; ``scale`` is the bias correction. The
    threshold ``lr * lam / D`` is computed as ``(lr * lam / scale) / (root + shift)``.
    """

    __slots__ = ("scale", "second", "shift", "take_sqrt")

    def __init__(self, second: torch.Tensor, take_sqrt: bool, scale: float, shift: float) -> None:
        self.second, self.take_sqrt, self.scale, self.shift = second, take_sqrt, scale, shift

    def full(self) -> torch.Tensor:
        """``root + shift`` as a new tensor (the metric up to the factor ``scale``)."""
        root = self.second.sqrt() if self.take_sqrt else self.second.clone()
        return root.add_(self.shift)


def steps(states: list[dict[str, Any]]) -> list[float]:
    """The step count of each state as floats, with one device-to-host copy per device (fused
    and capturable Adam keep their step counts on the parameters' device)."""
    result = [state.get("step", 0) for state in states]
    by_device: dict[torch.device, list[int]] = {}
    for i, step in enumerate(result):
        if isinstance(step, torch.Tensor):
            by_device.setdefault(step.device, []).append(i)
    for indices in by_device.values():
        counts = [result[i] for i in indices]
        if not all(count.dim() == 0 for count in counts):  # (0-d in torch's optimizers)
            counts = [count.reshape(()) for count in counts]
        values = torch.stack(counts).tolist()
        for i, value in zip(indices, values):
            result[i] = value
    return [float(s) for s in result]


def denominator(
    group: dict[str, Any], state: dict[str, Any], lr: float, step: float, memo: dict
) -> tuple[Denominator | None, float]:
    """(the metric of one parameter, its learning rate) from its optimizer state; None: plain.

    ``memo`` keeps the scalars of a param group at a step count for the group's other
    parameters (one proximal step: the hyperparameters cannot change during it).
    """
    if step <= 0:
        return None, lr
    if "exp_avg_sq" in state:  # Adam, AdamW, NAdam, RAdam
        second = state["max_exp_avg_sq"] if group.get("amsgrad") else state["exp_avg_sq"]
        kind = 0
    elif "exp_inf" in state:  # Adamax
        second, kind = state["exp_inf"], 1
    elif "sum" in state:  # Adagrad
        second, kind = state["sum"], 2
    elif "square_avg" in state:  # RMSprop
        second, kind = state["square_avg"], 3
        if group.get("centered") and "grad_avg" in state:
            grad_avg = local(state["grad_avg"])
            second = torch.addcmul(local(second), grad_avg, grad_avg, value=-1)
    else:
        return None, lr
    key = (id(group), kind, step)
    scalars = memo.get(key)
    if scalars is None:
        scalars = memo[key] = _metric_scalars(group, kind, lr, step)
    take_sqrt, scale, shift, rate = scalars
    return Denominator(local(second), take_sqrt, scale, shift), rate


def _metric_scalars(
    group: dict[str, Any], kind: int, lr: float, step: float
) -> tuple[bool, float, float, float]:
    """``(take_sqrt, scale, shift, learning rate)`` of the metric of ``kind`` (see
    :func:`denominator`) in param group ``group`` at step count ``step``."""
    eps = as_float(group.get("eps", 1e-8))
    if kind == 0:
        # D = sqrt(v / bc) + eps = (sqrt(v) + eps * sqrt(bc)) / sqrt(bc), bc = 1 - beta2**step
        root_bc = math.sqrt(1 - as_float(group["betas"][1]) ** step)
        return True, 1 / root_bc, eps * root_bc, lr
    if kind == 1:
        return False, 1.0, eps, lr
    if kind == 2:  # Adagrad decays its learning rate itself
        return True, 1.0, eps, lr / (1 + (step - 1) * as_float(group.get("lr_decay", 0.0)))
    return True, 1.0, eps, lr
