r"""The training pieces of :func:`l1reg.torch.lambda_path`: one path on one split of the data.

A path trains the dense model to a validation-loss plateau, then walks a geometric grid of
strengths ``lambda`` from the weakest to the strongest (dense to sparse; the module
``l1reg.torch._path`` says why), warm-starting each from the previous solution, with the
(group) L1 penalty applied by :class:`~l1reg.torch.ProximalL1` (exact zeros). After each
``lambda`` the support (the inputs whose weights in the first penalized parameter are not all
zero) is refitted without shrinkage (the relaxed lasso) and scored on the validation data, once
per distinct support. The walk stops once the validation loss has clearly passed its minimum.

``lambda_max`` is the smallest strength at which a proximal step leaves every penalized group at
zero when it is zero (the other parameters at the dense solution). The zero test of the group
prox in any diagonal metric ``D`` (:func:`l1reg.prox.metric_group_factor`) is
:math:`\|D z\| \le \eta \lambda c_k \sqrt{|g|}` with :math:`z = -\eta\,\hat m / D` for a group at
zero, so ``D`` cancels and the test reads :math:`\|\hat m_g\| \le \lambda c_k \sqrt{|g|}`:

.. math::

    \lambda_{\max} = \max_{k,\,g} \frac{\|\nabla_{w_g} L\|_2}{c_k \sqrt{|g|}}
    \quad\text{at } w_{\text{penalized}} = 0,

the same for Adam, SGD or any optimizer of ``_metric``, and for the plain L1 penalty with groups
of one weight (:math:`c_k`: the relative strength of parameter ``k``).
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..neural_path import standard_error
from ._proximal import ProximalL1
from ._regularizer import L1Regularizer, group_squares

__all__ = [
    "PathRecord",
    "Settings",
    "Split",
    "dense_fit",
    "fit_support",
    "hold_inputs",
    "input_norms",
    "lambda_max",
    "run_path",
    "set_strength",
]

#: Validation chunks of a single split: their spread gives the standard error of the validation
#: loss (the 1-SE rule and the stopping rule need one when there are no folds).
N_CHUNKS = 10
#: The walk stops after this many scored strengths in a row whose validation loss exceeds the
#: least one by more than its standard error ("clearly passed its minimum"), with fewer inputs
#: than at the least one (walking from dense to sparse, the unrelaxed loss first rises with
#: every input kept, then falls: measured on both synthetic problems).
STOP_AFTER = 3
#: An epoch improves the validation loss when it lowers the best one by more than this, relative.
IMPROVEMENT = 1e-4


@dataclass
class Settings:
    """How one path trains (every field from :func:`lambda_path`'s arguments)."""

    epochs: int
    patience: int
    relax: str | None  # "fresh", "warm" or None
    order: str = "dense_to_sparse"  # or "sparse_to_dense"
    warm_optimizer: bool = True
    progress: bool = False
    label: str = ""


@dataclass
class Split:
    """The data of one path: training tensors (or re-iterable batches) and validation tensors."""

    train: Any  # (x, y) tensors, or an iterable of (x, y) batches
    batch_size: int
    val_x: torch.Tensor | None = None
    val_y: torch.Tensor | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)
        if self.val_x is not None:
            # Chunks of shuffled rows: validation data sorted by class would give chunks of
            # one class each, and a standard error that measures the sorting.
            order = np.random.default_rng(self.seed).permutation(self.val_x.shape[0])
            count = min(N_CHUNKS, self.val_x.shape[0])
            self.chunks = [torch.as_tensor(rows) for rows in np.array_split(order, count)]

    def __getstate__(self) -> dict:  # (a torch.Generator does not pickle; its seed does)
        return {k: v for k, v in self.__dict__.items() if k not in ("generator", "chunks")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    def batches(self, device: torch.device) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of training batches (tensors: shuffled with the split's generator)."""
        if isinstance(self.train, tuple):
            x, y = self.train
            order = torch.randperm(x.shape[0], generator=self.generator)
            for start in range(0, x.shape[0], self.batch_size):
                rows = order[start : start + self.batch_size]
                yield x[rows].to(device), y[rows].to(device)
        else:
            for batch in self.train:
                yield batch[0].to(device), batch[1].to(device)

    def chunk_losses(self, model: nn.Module, loss_fn: Callable) -> np.ndarray:
        """The validation loss of each of ``N_CHUNKS`` chunks of rows (eval mode, no grad):
        one forward pass over the validation data, ``loss_fn`` on each chunk of its output."""
        assert self.val_x is not None and self.val_y is not None
        device = _device(model)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                output = model(self.val_x.to(device))
                target = self.val_y.to(device)
                losses = torch.stack(
                    [
                        loss_fn(output[rows.to(device)], target[rows.to(device)])
                        for rows in self.chunks
                    ]
                )
        finally:
            model.train(was_training)
        return losses.double().cpu().numpy()  # (one copy to the host)

    def chunk_sizes(self) -> np.ndarray:
        return np.array([rows.shape[0] for rows in self.chunks])


def _device(model: nn.Module) -> torch.device:
    for param in model.parameters():
        return param.device
    return torch.device("cpu")


def _mean(losses: np.ndarray, sizes: np.ndarray) -> float:
    return float(np.dot(losses, sizes) / sizes.sum())


def input_norms(reg: L1Regularizer) -> np.ndarray:
    """The L2 norm of each input's weights in the first penalized parameter (float64 NumPy)."""
    item = reg.selected[0]
    param = item.param.detach()
    axis = item.input_axis % param.dim()
    others = tuple(a for a in range(param.dim()) if a != axis)
    squares = (param.double() ** 2).sum(dim=others) if others else param.double() ** 2
    return squares.sqrt().cpu().numpy()


def relative_strengths(reg: L1Regularizer) -> list[float]:
    """Each penalized parameter's ``lambda_reg`` divided by the largest (all 1 by default)."""
    values = [item.lambda_reg for item in reg.selected]
    top = max(values)
    return [value / top for value in values]


def set_strength(reg: L1Regularizer, lam: float, weights: list[float]) -> None:
    """Set the strength of every penalized parameter to ``lam`` times its relative weight."""
    reg.lambda_reg = {item.param: lam * w for item, w in zip(reg.selected, weights)}


def _epoch(model, loss_fn, split: Split, optimizer) -> None:
    model.train()
    for x, y in split.batches(_device(model)):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()


def train(
    model: nn.Module,
    loss_fn: Callable,
    split: Split,
    optimizer: torch.optim.Optimizer,
    settings: Settings,
    *,
    fixed_epochs: int | None = None,
    keep_best: bool = False,
) -> tuple[int, np.ndarray | None]:
    """Train to a validation-loss plateau (``patience`` epochs without improvement, at most
    ``epochs``), or for ``fixed_epochs`` without validation data.

    Returns (epochs run, the chunk losses of the best epoch; None without validation). With
    ``keep_best`` the model ends with the weights of its best epoch.
    """
    if fixed_epochs is not None:
        for _ in range(fixed_epochs):
            _epoch(model, loss_fn, split, optimizer)
        return fixed_epochs, None
    sizes = split.chunk_sizes()
    best_losses, best_value, best_state, since = None, math.inf, None, 0
    epochs = 0
    while epochs < settings.epochs:
        epochs += 1
        _epoch(model, loss_fn, split, optimizer)
        losses = split.chunk_losses(model, loss_fn)
        value = _mean(losses, sizes)
        if value < best_value - IMPROVEMENT * abs(best_value) or best_losses is None:
            best_losses, best_value, since = losses, value, 0
            if keep_best:
                best_state = copy.deepcopy(model.state_dict())
        else:
            since += 1
            if since >= settings.patience:
                break
    if keep_best and best_state is not None:
        model.load_state_dict(best_state)
    return epochs, best_losses


def dense_fit(
    model: nn.Module,
    loss_fn: Callable,
    split: Split,
    make_optimizer: Callable,
    settings: Settings,
    *,
    fixed_epochs: int | None = None,
) -> tuple[torch.optim.Optimizer, int]:
    """Train the unpenalized model; returns its optimizer (warm state for the path) and epochs."""
    optimizer = make_optimizer(model.parameters())
    epochs, _ = train(
        model, loss_fn, split, optimizer, settings, fixed_epochs=fixed_epochs, keep_best=False
    )
    return optimizer, epochs


def lambda_max(model: nn.Module, loss_fn: Callable, split: Split, reg: L1Regularizer) -> float:
    """The smallest strength that keeps every penalized group at zero (the module docstring):
    the gradient of the mean training loss, in train mode, with the penalized weights at zero.

    Where that gradient is 0 (a ReLU layer whose units are all off at zero weights: biases <= 0),
    the strength at which each group is stationary at half its dense size instead: the prox's
    fixed point ``-grad_g = lambda sqrt|g| w_g / ||w_g||`` at ``w = w_dense / 2``.
    """
    top = _holding_strength(model, loss_fn, split, reg, 0.0)
    return top if top > 0 else _holding_strength(model, loss_fn, split, reg, 0.5)


def _holding_strength(
    model: nn.Module, loss_fn: Callable, split: Split, reg: L1Regularizer, scale: float
) -> float:
    """``max_g ||grad_g|| / (c_k sqrt|g|)`` with the penalized weights at ``scale`` times theirs."""
    params = reg.parameters()
    saved = [p.detach().clone() for p in params]
    grads = [torch.zeros_like(p) for p in params]
    device = _device(model)
    count = 0
    model.train()
    try:
        with torch.no_grad():
            for p in params:
                p.mul_(scale)
        x_all, y_all = split.train if isinstance(split.train, tuple) else (None, None)
        batches = (
            [(x_all[i : i + 4096], y_all[i : i + 4096]) for i in range(0, x_all.shape[0], 4096)]
            if x_all is not None
            else split.train
        )
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            loss = loss_fn(model(x), y)
            found = torch.autograd.grad(loss, params, allow_unused=True)
            for total, grad in zip(grads, found):
                if grad is not None:
                    total.add_(grad, alpha=x.shape[0])
            count += x.shape[0]
    finally:
        with torch.no_grad():
            for p, value in zip(params, saved):
                p.copy_(value)
    top = 0.0
    for item, grad, weight in zip(reg.selected, grads, relative_strengths(reg)):
        if weight <= 0:
            continue
        grad = grad / count
        if item.group_axes is None:
            top = max(top, float(grad.abs().max()) / weight)
        else:
            norms = group_squares(grad, item.group_axes).sqrt()
            top = max(top, float(norms.max()) / (weight * math.sqrt(item.group_size)))
    return top


@dataclass
class PathRecord:
    """What one path recorded, indexed like the grid (NaN / False where it did not go)."""

    visited: np.ndarray  # bool (n_lambdas,)
    losses: np.ndarray  # (n_lambdas, n_chunks): validation loss of the (relaxed) model, by chunk
    chunk_sizes: np.ndarray  # (n_chunks,)
    support: np.ndarray  # bool (n_lambdas, n_inputs)
    norms: np.ndarray  # (n_lambdas, n_inputs)
    seconds: np.ndarray  # (n_lambdas,) training time at each lambda, its refit included
    epochs: np.ndarray  # (n_lambdas,) epochs of the path at each lambda
    refit_epochs: np.ndarray  # (n_lambdas,) epochs of the refit that scored its support
    dense_epochs: int = 0
    dense_seconds: float = 0.0
    #: the weights of the model at each lambda (relaxed when relax), kept only when asked
    states: dict[int, dict] = field(default_factory=dict)

    @property
    def scores(self) -> np.ndarray:
        """The validation loss at each lambda (chunk losses averaged by chunk size)."""
        return self.losses @ self.chunk_sizes / self.chunk_sizes.sum()


def _masked_fresh(
    initial: dict, model: nn.Module, reg: L1Regularizer
) -> tuple[nn.Module, L1Regularizer]:
    """A copy of ``model`` at its initial weights, with the groups that are zero in ``model``
    set to zero (the support of the relaxed refit)."""
    fresh, fresh_reg = copy.deepcopy((model, reg))
    masks = []
    with torch.no_grad():
        for item in reg.selected:
            if item.group_axes is None:
                masks.append(item.param != 0)
            else:
                kept = group_squares(item.param, item.group_axes) > 0
                shape = [1 if a in item.group_axes else n for a, n in enumerate(item.param.shape)]
                masks.append(kept.reshape(shape))
        fresh.load_state_dict(initial)
        for item, mask in zip(fresh_reg.selected, masks):
            item.param.mul_(mask)
    return fresh, fresh_reg


def refit(
    model: nn.Module,
    reg: L1Regularizer,
    loss_fn: Callable,
    split: Split,
    make_optimizer: Callable,
    settings: Settings,
    initial: dict,
) -> tuple[nn.Module, int, np.ndarray | None]:
    """The relaxed lasso on ``model``'s support: a copy trained without shrinkage, from the
    initial weights (``relax="fresh"``) or from ``model``'s (``"warm"``), zeros held at zero.

    Returns (the refitted copy at its best epoch, epochs, its chunk losses).
    """
    if settings.relax == "fresh":
        relaxed, relaxed_reg = _masked_fresh(initial, model, reg)
    else:
        relaxed, relaxed_reg = copy.deepcopy((model, reg))
    epochs, losses = fit_support(relaxed, relaxed_reg, loss_fn, split, make_optimizer, settings)
    return relaxed, epochs, losses


def fit_support(
    model: nn.Module,
    reg: L1Regularizer,
    loss_fn: Callable,
    split: Split,
    make_optimizer: Callable,
    settings: Settings,
    fixed_epochs: int | None = None,
) -> tuple[int, np.ndarray | None]:
    """Train ``model`` in place without shrinkage, its zero groups held at zero: to its best
    validation epoch, or for ``fixed_epochs``. Returns (epochs, chunk losses or None)."""
    optimizer = ProximalL1(make_optimizer(model.parameters()), reg, relax_after=0)
    return train(
        model, loss_fn, split, optimizer, settings, fixed_epochs=fixed_epochs, keep_best=True
    )


@torch.no_grad()
def hold_inputs(reg: L1Regularizer, kept: np.ndarray) -> None:
    """Zero the weights of the inputs not ``kept`` in the first penalized parameter."""
    item = reg.selected[0]
    dropped = torch.as_tensor(np.flatnonzero(~kept), device=item.param.device)
    item.param.index_fill_(item.input_axis % item.param.dim(), dropped, 0)


def run_path(
    model: nn.Module,
    reg: L1Regularizer,
    loss_fn: Callable,
    split: Split,
    make_optimizer: Callable,
    grid: np.ndarray,
    settings: Settings,
    initial: dict,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    indices: list[int] | None = None,
    fixed_epochs: np.ndarray | None = None,
    keep: Callable[[int], bool] | None = None,
    scored: bool = True,
) -> PathRecord:
    """Walk ``grid`` (decreasing strengths) from the dense ``model`` (trained already, with its
    ``optimizer``), training ``model`` in place.

    ``indices``: the grid points to visit, in order (default: all, in ``settings.order``).
    ``fixed_epochs``: epochs at each lambda instead of the plateau (the path on all the data
    after cross-validation, without validation data); ``scored=False``: no refit except where
    kept, and no early stop.
    ``keep(i)``: keep the weights of the (relaxed) model at lambda ``i``.
    """
    n, n_inputs = grid.shape[0], input_norms(reg).shape[0]
    n_chunks = split.chunk_sizes().shape[0] if split.val_x is not None else 1
    record = PathRecord(
        visited=np.zeros(n, dtype=bool),
        losses=np.full((n, n_chunks), np.nan),
        chunk_sizes=split.chunk_sizes() if split.val_x is not None else np.ones(1),
        support=np.zeros((n, n_inputs), dtype=bool),
        norms=np.zeros((n, n_inputs)),
        seconds=np.zeros(n),
        epochs=np.zeros(n, dtype=int),
        refit_epochs=np.zeros(n, dtype=int),
    )
    weights = relative_strengths(reg)
    if indices is None:
        indices = list(range(n - 1, -1, -1) if settings.order == "dense_to_sparse" else range(n))
    order = indices
    if settings.order == "sparse_to_dense":
        with torch.no_grad():
            for p in reg.parameters():
                p.zero_()
    if optimizer is None or not settings.warm_optimizer:
        optimizer = make_optimizer(model.parameters())
    stepper = ProximalL1(optimizer, reg)
    by_support: dict[bytes, tuple[np.ndarray, int, dict | None]] = {}
    best, best_se, best_size, worse = math.inf, 0.0, 0, 0
    for step, i in enumerate(order):
        start = time.perf_counter()
        set_strength(reg, float(grid[i]), weights)
        if not settings.warm_optimizer and step > 0:
            stepper = ProximalL1(make_optimizer(model.parameters()), reg)
        fixed = None if fixed_epochs is None else int(fixed_epochs[i])
        epochs, losses = train(model, loss_fn, split, stepper, settings, fixed_epochs=fixed)
        norms = input_norms(reg)
        support = norms > 0
        record.visited[i], record.epochs[i] = True, epochs
        record.norms[i], record.support[i] = norms, support
        wanted = keep is not None and keep(i)
        if settings.relax is not None and (scored or wanted):
            key = np.packbits(support).tobytes()
            if key not in by_support or (wanted and by_support[key][2] is None):
                relaxed, refit_epochs, losses = refit(
                    model, reg, loss_fn, split, make_optimizer, settings, initial
                )
                state = copy.deepcopy(relaxed.state_dict()) if wanted else None
                by_support[key] = (losses, refit_epochs, state)
            losses, record.refit_epochs[i], state = by_support[key]
            if wanted:
                record.states[i] = state
        else:
            if split.val_x is not None:
                losses = split.chunk_losses(model, loss_fn)  # the shrunk model as it ends
            if wanted:
                record.states[i] = copy.deepcopy(model.state_dict())
        record.seconds[i] = time.perf_counter() - start
        if losses is not None:
            record.losses[i] = losses
        if settings.progress:
            _report(settings.label, step, n, grid[i], support, record, i)
        if not scored or losses is None:
            continue
        value = _mean(losses, record.chunk_sizes)
        size = int(support.sum())
        if value < best:
            best, best_se, best_size, worse = value, float(standard_error(losses)), size, 0
        elif value > best + best_se and _past(size, best_size, settings.order):
            worse += 1  # (only inputs gone since the best, or come, can have passed it)
        else:
            worse = 0
        if worse >= STOP_AFTER or (settings.order == "dense_to_sparse" and not support.any()):
            break
    return record


def _past(size: int, best_size: int, order: str) -> bool:
    return size < best_size if order == "dense_to_sparse" else size > best_size


def _report(label, step, n, lam, support, record, i) -> None:
    score = record.scores[i]
    text = "" if math.isnan(score) else f", validation loss {score:.4g}"
    print(
        f"{label}lambda {step + 1}/{n} = {lam:.3g}: {int(support.sum())} inputs kept{text} "
        f"({record.seconds[i]:.1f} s)",
        file=sys.stderr,
        flush=True,
    )
