"""The data of :func:`l1reg.torch.lambda_path`: tensors or batches, checked; hold-outs, folds."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from .._validation import invalid_parameter

__all__ = ["DATA", "checked_data", "folds", "holdout", "rows", "tensors"]

_OWNER = "lambda_path"
DATA = "a tuple (x, y) of tensors with as many rows, or an iterable of (x, y) batches"
#: The share of the training data held out for validation when ``val`` is None (no folds), and
#: for stopping the dense fit on all data before cross-validation.
HOLDOUT = 0.2


def checked_data(data: Any, name: str) -> Any:
    """(x, y) tensors, or a re-iterable of batches; one-pass iterators are gathered."""
    if (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(isinstance(t, torch.Tensor) for t in data)
    ):
        x, y = data
        if x.dim() == 0 or y.dim() == 0 or x.shape[0] != y.shape[0] or x.shape[0] < 2:
            raise ValueError(invalid_parameter(name, _OWNER, DATA + " (2 or more)", data))
        return (x, y)
    if isinstance(data, (str, bytes, tuple, dict)) or not isinstance(data, Iterable):
        raise TypeError(invalid_parameter(name, _OWNER, DATA, data))
    if isinstance(data, Iterator):  # one pass only (a DataLoader is no iterator: not called,
        # since making its iterator draws a seed from torch's global generator)
        return _gather(list(data), name, data)
    return data


def _gather(batches: list, name: str, data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    ok = batches and all(
        isinstance(b, (tuple, list))
        and len(b) >= 2
        and all(isinstance(t, torch.Tensor) for t in b[:2])
        for b in batches
    )
    if not ok:
        raise TypeError(invalid_parameter(name, _OWNER, DATA, data))
    return checked_data(
        (torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])), name
    )


def tensors(data: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    return data if isinstance(data, tuple) else _gather(list(data), name, data)


def rows(data: Any) -> int | None:
    if isinstance(data, tuple):
        return int(data[0].shape[0])
    dataset = getattr(data, "dataset", None)
    try:
        return len(dataset) if dataset is not None else None
    except TypeError:
        return None


def _integer_targets(y: torch.Tensor) -> bool:
    return y.dim() == 1 and not (y.is_floating_point() or y.is_complex())


def holdout(x: torch.Tensor, y: torch.Tensor, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    rows = np.arange(x.shape[0])
    stratify = y.cpu().numpy() if _integer_targets(y) else None
    try:
        fit, held = train_test_split(rows, test_size=HOLDOUT, random_state=seed, stratify=stratify)
    except ValueError:  # a class too small to stratify
        fit, held = train_test_split(rows, test_size=HOLDOUT, random_state=seed)
    return np.sort(fit), np.sort(held)


def folds(y: torch.Tensor, cv: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Shuffled folds, stratified for class labels when every class has ``cv`` members."""
    from sklearn.model_selection import KFold, StratifiedKFold

    rows = np.zeros((y.shape[0], 1))
    if _integer_targets(y):
        labels = y.cpu().numpy()
        if np.unique(labels, return_counts=True)[1].min() >= cv:
            return list(StratifiedKFold(cv, shuffle=True, random_state=seed).split(rows, labels))
    return list(KFold(cv, shuffle=True, random_state=seed).split(rows))
