"""``lambda_path``: the strength of the (group) L1 penalty of any torch model, chosen by validation.

The pieces that train live in ``_path_fit``; this module checks the arguments, splits the data,
runs the paths (folds in spawned processes where that pays) and builds the
:class:`~l1reg.neural_path.NeuralPath`.
"""

from __future__ import annotations

import copy
import math
import numbers
import os
import pickle
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from .._validation import (
    Boolean,
    Checked,
    Interval,
    NoneValue,
    Options,
    declare_params,
    invalid_parameter,
)
from .._validation import (
    Callable as CallableConstraint,
)
from ..neural_path import NeuralPath, choose_lambdas
from ._inspect import prune
from ._path_data import DATA, checked_data, folds, holdout, rows, tensors
from ._path_fit import (
    Settings,
    Split,
    dense_fit,
    fit_support,
    hold_inputs,
    lambda_max,
    run_path,
)
from ._proximal import ProximalL1
from ._regularizer import L1Regularizer
from ._selection import MODULE, select_parameters

__all__ = ["lambda_path"]

_OWNER = "lambda_path"
_BATCH_SIZE = 64
#: How far above lambda_max the walk from dense to sparse may go (it stops where no input is
#: left; measured: the last input left at 44 lambda_max on the 20-input synthetic problem and at
#: 212 lambda_max on make_friedman1 with 50 inputs).
_BEYOND = 1e4


def _data_examples(valid: Any) -> list:
    x, y = valid if isinstance(valid, tuple) else (torch.zeros(4, 2), torch.zeros(4))
    return ["abc", 3, (x,), (x, y[:-1]), (x.numpy(), y.numpy())]


def _reg_examples(valid: Any) -> list:
    other = nn.Sequential(nn.Linear(3, 2))
    return ["abc", 1.5, L1Regularizer(other)]


def _adam(params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1e-3)


@declare_params(
    _OWNER,
    model=MODULE,
    loss_fn=[CallableConstraint()],
    train=[Checked(DATA, _data_examples)],
    val=[NoneValue(), Checked(DATA, _data_examples)],
    cv=[NoneValue(), Interval(numbers.Integral, 2, None)],
    reg=[
        NoneValue(),
        Checked("an l1reg.torch.L1Regularizer of the model", _reg_examples),
    ],
    optimizer=[
        NoneValue(),
        Checked(
            "a callable that makes a torch optimizer from parameters (an optimizer class, or "
            "functools.partial(torch.optim.Adam, lr=...))",
            lambda valid: ["abc", 3, torch.optim.SGD([torch.zeros(1, requires_grad=True)], 0.1)],
        ),
    ],
    lambdas=[Interval(numbers.Integral, 2, None)],
    lambda_min_ratio=[Interval(numbers.Real, 0, 1, "neither")],
    epochs=[Interval(numbers.Integral, 1, None)],
    patience=[Interval(numbers.Integral, 1, None)],
    relax=[Boolean(), Options("fresh", "warm")],
    select=[Options("1se", "min")],
    batch_size=[NoneValue(), Interval(numbers.Integral, 1, None)],
    n_jobs=[NoneValue(), Interval(numbers.Integral, 1, None)],
    seed=[Interval(numbers.Integral, 0, None)],
    progress=[Boolean()],
)
def lambda_path(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    train: Any,
    *,
    val: Any = None,
    cv: int | None = None,
    reg: L1Regularizer | None = None,
    optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    lambdas: int = 30,
    lambda_min_ratio: float = 1e-2,
    epochs: int = 200,
    patience: int = 5,
    relax: bool | str = True,
    select: str = "1se",
    batch_size: int | None = None,
    n_jobs: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> NeuralPath:
    r"""The regularization path of a torch model's (group) L1 penalty, scored by validation.

    A copy of ``model`` is trained (``copy.deepcopy`` of the model with its regularizer: the
    caller's model, regularizer, data and random generators stay as they were). First without
    penalty, to a validation-loss plateau; then ``lambda_max`` is computed, the smallest strength
    at which a group that is zero stays zero, from the gradient with the penalized weights at
    zero and the rest at the dense solution:

    .. math::

        \lambda_{\max} = \max_g \frac{\|\nabla_{w_g} L\|_2}{\sqrt{|g|}}

    (the optimizer's metric cancels in the zero test of the prox; the alpha_max of the Lasso).
    The path then walks a geometric grid from dense to sparse: from ``lambda_min_ratio *
    lambda_max`` up, ``lambdas`` strengths to ``lambda_max``, and on above it with the same
    factor until no input is left, each strength warm-started from the previous solution (same
    optimizer, its state kept) and trained to a validation-loss plateau with the penalty applied
    by :class:`ProximalL1` (exact zeros). From dense to sparse because a zero group only comes
    back through its linear effect (its gradient at zero), so a walk from ``lambda_max`` down
    never brings in an input whose effect is an interaction or even (x0 x1, x2^2): on
    make_friedman1 it missed x2 (R^2 0.84 against 0.94), on the 20-input synthetic problem it
    kept 11 inputs (accuracy 0.80 against 4 inputs and 0.93). A group that is not zero needs a
    larger strength to reach zero than a zero group needs to stay there, hence the grid above
    ``lambda_max`` (the last input left at 44 and 212 ``lambda_max`` on those problems).

    After each strength its support (the inputs with a nonzero weight in the first penalized
    parameter) is refitted without shrinkage (``relax``, the relaxed lasso) and scored by the
    validation loss, once per distinct support; the walk stops once that loss has clearly passed
    its minimum (three strengths in a row above the minimum plus its standard error, with fewer
    inputs than at the minimum).

    Parameters
    ----------
    model : torch.nn.Module
        Any module; ``loss_fn(model(x), y)`` is the loss of a batch (mean reduction).
    loss_fn : callable
        ``loss_fn(output, target) -> 0-d tensor``, e.g. ``torch.nn.CrossEntropyLoss()``.
    train, val : tuple (x, y) of tensors, or an iterable of (x, y) batches (a DataLoader)
        The data. Tensors are shuffled into batches of ``batch_size`` each epoch. Without
        ``val`` and ``cv``, 20 % of ``train`` (stratified for class labels) is held out.
        Validation data, and training data that must be split, are gathered into tensors.
    cv : int, optional
        Run the path on ``cv`` folds (shuffled with ``seed``; stratified for class labels), on
        the grid of the whole data's ``lambda_max`` (its dense fit stopped on a 20 % hold-out,
        or on ``val``); the score at each strength is the mean over folds with its standard
        error, the support the inputs that at least half of the folds keep. Then that support
        at the chosen strength is refitted on all the data, for the folds' median refit epochs
        there (with ``relax="warm"`` or False, from the path on all the data to that strength,
        each strength for the folds' median epochs).
    reg : L1Regularizer, optional
        The penalty, on ``model``; default ``L1Regularizer(model, groups="input",
        include=<the first layer's weight>)``: input selection. Its ``lambda_reg`` gives the
        relative strength of each parameter (all equal by default); the path sets the scale.
        The inputs of the path are the input features of its first parameter.
    optimizer : callable, optional
        ``optimizer(params) -> torch.optim.Optimizer``: an optimizer class or
        ``functools.partial(torch.optim.Adam, lr=1e-2)``; default Adam with ``lr=1e-3``. The walk
        keeps one optimizer, warm, from the dense fit to its last strength (a fresh one per
        strength kept one more irrelevant input on the synthetic problem); each refit and each
        fold gets a new one.
    lambdas : int, default 30
        The strengths of the grid from ``lambda_min_ratio * lambda_max`` to ``lambda_max``.
    lambda_min_ratio : float, default 0.01
        The weakest strength, relative to ``lambda_max`` (the first input left at 0.09
        ``lambda_max`` on make_friedman1, at 1.5 on the synthetic problem).
    epochs : int, default 200
        The most epochs of any one fit (the dense fit, each strength, each refit).
    patience : int, default 5
        A fit ends after this many epochs without a better validation loss.
    relax : bool or {"fresh", "warm"}, default True
        Score each support after a refit without shrinkage: ``"fresh"`` (True) from the model's
        initial weights with the dropped inputs' weights at zero, ``"warm"`` from the shrunk
        solution; False: score the shrunk model itself (it kept 20 of 20 and 48 of 50 inputs).
        Fresh refits gave 4 inputs and accuracy 0.933 / 0.929 (two seeds) on the synthetic
        problem and 5-7 inputs with R^2 0.936 / 0.937 on make_friedman1; warm ones 0.899 / 0.922
        and 5 or 48 inputs with 0.945 / 0.919.
    select : {"1se", "min"}, default "1se"
        The strength of the returned model: the sparsest within one standard error of the least
        validation loss (glmnet's ``lambda.1se``), or the least validation loss.
    batch_size : int, optional
        Rows per batch for tensor data; default 64 (a DataLoader's own batch size when its
        batches are gathered).
    n_jobs : int, optional
        Processes for the folds (spawned, torch threads shared out); default as many as folds
        and CPU cores allow; 1 where the arguments do not pickle (a lambda as ``loss_fn``) or
        the model is on a GPU. A script needs the ``if __name__ == "__main__":`` guard to spawn
        them (without it the folds run here, after a warning).
    seed : int, default 0
        Seeds the folds, the hold-out, the batch order and torch's random numbers (forked: the
        caller's generators are left as they were).
    progress : bool, default True
        Print one line per strength to standard error.

    Returns
    -------
    NeuralPath
        The losses, supports and norms along the path, ``lambda_min_``, ``lambda_1se_``, the
        selection frequencies across folds and ``model_``, trained at the chosen strength and
        pruned with :func:`prune` (where ``torch.fx`` can trace it).

    Examples
    --------
    >>> import torch
    >>> from l1reg.torch import lambda_path
    >>> x = torch.randn(400, 8)
    >>> y = x[:, :1] ** 2 + x[:, 1:2]
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    >>> path = lambda_path(model, torch.nn.MSELoss(), (x, y), progress=False)  # doctest: +SKIP
    >>> path.selected_features_  # doctest: +SKIP
    [0, 1]
    """
    train = checked_data(train, "train")
    val = None if val is None else checked_data(val, "val")
    n_rows = rows(train)
    if cv is not None and (n_rows is None or cv > n_rows):
        raise ValueError(
            invalid_parameter("cv", _OWNER, f"at most the number of training rows ({n_rows})", cv)
        )
    work, work_reg = _copies(model, reg)
    make_optimizer = optimizer or _adam
    _check_optimizer(make_optimizer, work, work_reg, optimizer)
    relax_mode = {True: "fresh", False: None}.get(relax, relax)  # type: ignore[arg-type]
    settings = Settings(epochs=epochs, patience=patience, relax=relax_mode, progress=progress)
    devices = [work_device.index or 0] if (work_device := _device(work)).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        job = _Job(work, work_reg, loss_fn, make_optimizer, settings, seed, lambdas,
                   lambda_min_ratio, batch_size)  # fmt: skip
        if cv is None:
            return job.single(train, val, select)
        return job.cross_validated(train, val, cv, select, n_jobs)


def _device(model: nn.Module) -> torch.device:
    for param in model.parameters():
        return param.device
    return torch.device("cpu")


def _copies(model: nn.Module, reg: L1Regularizer | None) -> tuple[nn.Module, L1Regularizer]:
    """Copies of the model and its regularizer (the copy penalizes the copied parameters)."""
    if reg is None:
        first = select_parameters(model, None, None, _OWNER)[0][0]
        work = copy.deepcopy(model)
        return work, L1Regularizer(work, groups="input", include=[first])
    if not isinstance(reg, L1Regularizer) or reg.module is not model:
        raise (TypeError if not isinstance(reg, L1Regularizer) else ValueError)(
            invalid_parameter("reg", _OWNER, "an l1reg.torch.L1Regularizer of the model", reg)
        )
    if max(item.lambda_reg for item in reg.selected) <= 0:
        raise ValueError(
            invalid_parameter(
                "reg", _OWNER, "a regularizer with a lambda_reg > 0 (its relative strengths)", reg
            )
        )
    return copy.deepcopy((model, reg))


def _check_optimizer(make: Callable, work: nn.Module, reg: L1Regularizer, given: Any) -> None:
    expected = "a callable that makes a torch optimizer holding the penalized parameters"
    if isinstance(make, torch.optim.Optimizer) or not callable(make):
        raise TypeError(invalid_parameter("optimizer", _OWNER, expected, given))
    try:
        made = make(work.parameters())
    except Exception as error:
        raise TypeError(
            invalid_parameter("optimizer", _OWNER, expected, given) + f" It raised {error!r}."
        ) from None
    if not isinstance(made, torch.optim.Optimizer):
        raise TypeError(invalid_parameter("optimizer", _OWNER, expected, given))
    try:
        ProximalL1(made, reg)
    except (TypeError, ValueError) as error:
        raise ValueError(invalid_parameter("optimizer", _OWNER, expected, given)) from error


def _grid(top: float, count: int, ratio: float, order: str) -> np.ndarray:
    """``count`` strengths from ``top`` down to ``ratio * top``; walked from dense to sparse, the
    grid goes on above ``top`` with the same factor, up to ``_BEYOND * top``."""
    grid = np.geomspace(top, top * ratio, count)
    if order != "dense_to_sparse":
        return grid
    step = (1 / ratio) ** (1 / (count - 1))
    above = top * step ** np.arange(math.ceil(math.log(_BEYOND) / math.log(step)), 0, -1)
    return np.concatenate([above, grid])


class _Job:
    """One call of :func:`lambda_path`: the copies and settings every path shares."""

    def __init__(self, model, reg, loss_fn, make_optimizer, settings, seed, count, ratio, batch):
        self.model, self.reg, self.loss_fn = model, reg, loss_fn
        self.make_optimizer, self.settings, self.seed = make_optimizer, settings, seed
        self.count, self.ratio, self.batch = count, ratio, batch
        self.initial = copy.deepcopy(model.state_dict())

    def _split(self, train, val_x=None, val_y=None, seed=0) -> Split:
        batch = self.batch or getattr(train, "batch_size", None) or _BATCH_SIZE
        return Split(train, int(batch), val_x, val_y, seed)

    def single(self, train, val, select: str) -> NeuralPath:
        if val is None:
            x, y = tensors(train, "train")
            fit, held = holdout(x, y, self.seed)
            split = self._split((x[fit], y[fit]), x[held], y[held], self.seed)
        else:
            val_x, val_y = tensors(val, "val")
            split = self._split(train, val_x, val_y, self.seed)
        model, reg = self.model, self.reg
        optimizer, _ = dense_fit(model, self.loss_fn, split, self.make_optimizer, self.settings)
        top = lambda_max(model, self.loss_fn, split, reg)
        grid = _grid(top, self.count, self.ratio, self.settings.order)
        record = run_path(
            model, reg, self.loss_fn, split, self.make_optimizer, grid, self.settings, self.initial,
            optimizer=optimizer, keep=lambda i: True,
        )  # fmt: skip
        visited = record.visited
        errors = record.losses[visited]
        lambdas = grid[visited]
        best, one_se = choose_lambdas(lambdas, errors)
        chosen = np.flatnonzero(visited)[one_se if select == "1se" else best]
        self.model.load_state_dict(record.states[chosen])
        support = record.support[visited]
        return self._result(
            lambdas, top, errors, support, record.norms[visited], record.seconds[visited],
            support[np.newaxis], select, "validation chunks",
        )  # fmt: skip

    def cross_validated(self, train, val, cv: int, select: str, n_jobs: int | None) -> NeuralPath:
        x, y = tensors(train, "train")
        # The grid: lambda_max of a dense model of all the data, stopped on a hold-out (or val).
        if val is None:
            fit, held = holdout(x, y, self.seed)
            stop = self._split((x[fit], y[fit]), x[held], y[held], self.seed)
        else:
            stop = self._split((x, y), *tensors(val, "val"), self.seed)
        full = self._split((x, y), seed=self.seed)
        model, reg, loss_fn = self.model, self.reg, self.loss_fn
        optimizer, _ = dense_fit(model, loss_fn, stop, self.make_optimizer, self.settings)
        top = lambda_max(model, loss_fn, full, reg)
        grid = _grid(top, self.count, self.ratio, self.settings.order)
        splits = [
            self._split((x[tr], y[tr]), x[te], y[te], self.seed + 1 + k)
            for k, (tr, te) in enumerate(folds(y, cv, self.seed))
        ]
        records = _run_folds(self, splits, grid, n_jobs)
        common = np.logical_and.reduce([r.visited for r in records])
        errors = np.column_stack([r.scores[common] for r in records])
        best, one_se = choose_lambdas(grid[common], errors)
        chosen = int(np.flatnonzero(common)[one_se if select == "1se" else best])
        # The support at each strength: the inputs that at least half of the folds keep. (The
        # path on all the data is not nested: measured, it dropped a relevant input at the one
        # strength where every fold kept it.) The model: the support at the chosen strength,
        # refitted on all the data for the folds' median refit epochs there.
        fold_support = np.stack([r.support[common] for r in records])
        support = fold_support.mean(axis=0) >= 0.5
        position = one_se if select == "1se" else best
        start = time.perf_counter()
        if self.settings.relax == "fresh":
            model.load_state_dict(self.initial)
        else:  # from the shrunk solution on all the data: the path to the chosen strength
            epochs = np.maximum(np.median([r.epochs for r in records], axis=0).round(), 1)
            settings = copy.copy(self.settings)
            settings.label = "all data: "
            order = [i for i in range(grid.shape[0] - 1, chosen - 1, -1) if common[i]]
            run_path(
                model, reg, loss_fn, full, self.make_optimizer, grid, settings, self.initial,
                optimizer=optimizer, indices=order, fixed_epochs=epochs, scored=False,
            )  # fmt: skip
        hold_inputs(reg, support[position])
        if self.settings.relax is not None:
            refits = np.median([r.refit_epochs[chosen] for r in records])
            fit_support(
                model, reg, loss_fn, full, self.make_optimizer, self.settings, max(1, round(refits))
            )
        seconds = np.sum([r.seconds[common] for r in records], axis=0)
        seconds[position] += time.perf_counter() - start
        norms = np.mean([r.norms[common] for r in records], axis=0)
        return self._result(
            grid[common], top, errors, support, norms, seconds, fold_support, select, "folds"
        )

    def _result(
        self, lambdas, top, errors, support, norms, seconds, fold_support, select, unit
    ) -> NeuralPath:
        return NeuralPath(
            lambdas=lambdas,
            lambda_max=top,
            val_loss=errors,
            support=support,
            group_norms=norms,
            train_seconds=seconds,
            fold_support=fold_support,
            exit_lambdas=_exit_lambdas(lambdas, support),
            select=select,
            unit=unit,
            model=_pruned(self.model),
        )


def _exit_lambdas(lambdas: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Per input, the smallest strength from which on (to the strongest) it is never kept;
    ``inf`` where it is kept at the strongest one (``lambdas`` decrease)."""
    exits = np.full(support.shape[1], np.inf)
    for j in range(support.shape[1]):
        kept = np.flatnonzero(support[:, j])
        if kept.size == 0:
            exits[j] = lambdas[-1]
        elif kept[0] > 0:
            exits[j] = lambdas[kept[0] - 1]
    return exits


def _pruned(model: nn.Module) -> nn.Module:
    """The model with its dropped inputs and dead units removed, where torch.fx can trace it."""
    try:
        return prune(model).module
    except (TypeError, ValueError):
        return model


def _fold_path(payload: bytes | tuple, split: Split, grid: np.ndarray, seed: int, threads: int):
    """One fold's path: the dense fit from the initial weights, then the walk (in a worker or
    in this process)."""
    if threads:
        torch.set_num_threads(threads)
    model, reg, loss_fn, make_optimizer, settings, initial = (
        pickle.loads(payload) if isinstance(payload, bytes) else copy.deepcopy(payload)
    )
    torch.manual_seed(seed)
    model.load_state_dict(initial)
    optimizer, dense_epochs = dense_fit(model, loss_fn, split, make_optimizer, settings)
    record = run_path(
        model, reg, loss_fn, split, make_optimizer, grid, settings, initial, optimizer=optimizer
    )
    record.dense_epochs = dense_epochs
    return record


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # (not on macOS or Windows)
        return os.cpu_count() or 1


def _run_folds(job: _Job, splits: list[Split], grid: np.ndarray, n_jobs: int | None):
    """The folds' paths, in spawned processes where more than one can run and all pickles."""
    parts = (job.model, job.reg, job.loss_fn, job.make_optimizer, None, job.initial)
    workers = min(len(splits), _cores() if n_jobs is None else n_jobs)
    payload: bytes | None = None
    if workers > 1 and _device(job.model).type == "cpu":
        try:
            payload = pickle.dumps((*parts[:4], job.settings, job.initial))
        except (pickle.PicklingError, AttributeError, TypeError):
            payload = None  # (a lambda or a local function: run here, one fold after another)
    results = []
    if payload is None:
        for k, split in enumerate(splits):
            settings = copy.copy(job.settings)
            settings.label = f"fold {k + 1}/{len(splits)}: "
            local = (job.model, job.reg, job.loss_fn, job.make_optimizer, settings, job.initial)
            results.append(_fold_path(local, split, grid, job.seed + 1 + k, 0))
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    threads = max(1, _cores() // workers)
    # spawn, not fork: torch's GNU OpenMP runtime is not fork-safe (DESIGN.md, pitfalls).
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = []
            for k, split in enumerate(splits):
                settings = copy.copy(job.settings)
                settings.label = f"fold {k + 1}/{len(splits)}: "
                data = pickle.dumps((*parts[:4], settings, job.initial))
                futures.append(
                    pool.submit(_fold_path, data, split, grid, job.seed + 1 + k, threads)
                )
            return [future.result() for future in futures]
    except BrokenProcessPool:
        # A spawned process imports the caller's main script again; without the
        # ``if __name__ == "__main__":`` guard its own lambda_path call stops it.
        warnings.warn(
            "lambda_path: the processes for the folds could not start (a script that calls "
            "lambda_path needs the `if __name__ == '__main__':` guard to spawn them); the "
            "folds run in this process, one after another (n_jobs=1 skips this attempt).",
            RuntimeWarning,
            stacklevel=4,
        )
        return _run_folds(job, splits, grid, 1)
