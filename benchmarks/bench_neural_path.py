"""Question: does l1reg.torch.lambda_path pick the relevant inputs of a neural network, at a test
score near the oracle's and above LassoNet's, in less time than LassoNet's cross-validated path?

Problems (issue 13): a 20-input classification whose class depends on 4 inputs, none of them
linearly (x0 x1, x2^2, sin 2 x3; 1,000 training and 2,000 test rows), and scikit-learn's
make_friedman1 with 50 inputs (5 relevant; 1,000 / 2,000 rows, standardized). On each:

- ``lambda_path`` with ``cv`` folds (lambda_1se, relaxed refits), on an MLP of two hidden
  layers of 64 units, defaults otherwise;
- ``LassoNetClassifierCV`` / ``LassoNetRegressorCV`` (lassonet, benchmark-only peer) at their
  defaults but ``cv`` (hidden_dims=(100,), path x1.02, M=10; 5 folds by default);
- the same MLP on all inputs and on the true inputs (the oracle), trained with Adam (lr 1e-3,
  batches of 64) to the best loss on a 20 % hold-out (patience 10).

Test score: accuracy, or R^2. Wall time of the whole fit, on the same cores (``lambda_path``
runs its folds in 2 spawned processes on 2 cores; LassoNet one fold after another).

    pip install lassonet   # the peer, never a dependency of l1reg
    python benchmarks/bench_neural_path.py [--folds 5] [--only NAME] [--fits l1reg,lassonet,mlp]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import time

import numpy as np
import torch
from torch import nn


def synthetic(n_train: int = 1000, n_test: int = 2000, p: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_train + n_test, p))
    z = 2 * x[:, 0] * x[:, 1] + 1.5 * (x[:, 2] ** 2 - 1) + 2 * np.sin(2 * x[:, 3])
    y = (z + 0.3 * rng.standard_normal(z.shape) > 0).astype(np.int64)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:], [0, 1, 2, 3], "classification"


def friedman(n_train: int = 1000, n_test: int = 2000, p: int = 50, seed: int = 0):
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_train + n_test, p, noise=1.0, random_state=seed)
    x = (x - x[:n_train].mean(0)) / x[:n_train].std(0)
    y = (y - y[:n_train].mean()) / y[:n_train].std()
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:], [0, 1, 2, 3, 4], "regression"


def mlp(p: int, out: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(p, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, out)
    )


def tensors(x, y, task):
    xt = torch.tensor(x, dtype=torch.float32)
    yt = torch.tensor(y) if task == "classification" else torch.tensor(y, dtype=torch.float32)
    return xt, (yt if task == "classification" else yt[:, None])


def test_score(model, x, y, task) -> float:
    xt, yt = tensors(x, y, task)
    model.eval()
    with torch.no_grad():
        out = model(xt)
    if task == "classification":
        return float((out.argmax(1) == yt).float().mean())
    return float(1 - ((out - yt) ** 2).sum() / ((yt - yt.mean()) ** 2).sum())


def loss_of(task):
    return nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()


def plain_mlp(x, y, x_test, y_test, task, columns) -> tuple[float, float]:
    """An MLP on ``columns``, early-stopped on a 20 % hold-out; (test score, seconds)."""
    start = time.perf_counter()
    xt, yt = tensors(x[:, columns], y, task)
    n_fit = int(0.8 * xt.shape[0])
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(xt.shape[0], generator=generator)
    fit, held = order[:n_fit], order[n_fit:]
    model = mlp(len(columns), 2 if task == "classification" else 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = loss_of(task)
    best, best_state, since = np.inf, None, 0
    for _ in range(1000):
        model.train()
        for rows in torch.randperm(n_fit, generator=generator).split(64):
            optimizer.zero_grad()
            loss_fn(model(xt[fit[rows]]), yt[fit[rows]]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            value = float(loss_fn(model(xt[held]), yt[held]))
        if best_state is None or value < best - 1e-4 * abs(best):
            best, best_state, since = value, copy.deepcopy(model.state_dict()), 0
        else:
            since += 1
            if since >= 10:
                break
    model.load_state_dict(best_state)
    seconds = time.perf_counter() - start
    return test_score(model, x_test[:, columns], y_test, task), seconds


def run_l1reg(x, y, x_test, y_test, task, folds: int):
    from l1reg.torch import lambda_path

    xt, yt = tensors(x, y, task)
    model = mlp(x.shape[1], 2 if task == "classification" else 1)
    start = time.perf_counter()
    path = lambda_path(model, loss_of(task), (xt, yt), cv=folds, progress=False)
    seconds = time.perf_counter() - start
    kept = path.selected_features_
    return kept, test_score(path.model_, x_test[:, :], y_test, task), seconds, path


def run_lassonet(x, y, x_test, y_test, task, folds: int):
    from lassonet import LassoNetClassifierCV, LassoNetRegressorCV

    peer = LassoNetClassifierCV if task == "classification" else LassoNetRegressorCV
    model = peer(cv=folds, verbose=0, random_state=0, torch_seed=0)
    start = time.perf_counter()
    model.fit(x, y)
    seconds = time.perf_counter() - start
    kept = [int(j) for j in np.flatnonzero(model.best_selected_.cpu().numpy())]
    return kept, float(model.score(x_test, y_test)), seconds, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only", default="")
    parser.add_argument("--fits", default="l1reg,lassonet,mlp", help="comma-separated")
    args = parser.parse_args()
    fits_run = args.fits.split(",")
    if "lassonet" in fits_run:
        import lassonet  # noqa: F401  (fail early when the peer is missing)

    print(
        f"# neural lambda path, {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
        f"{os.cpu_count()} cores; torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"{args.folds} folds"
    )
    print("| problem | fit | inputs kept | relevant kept | test score | wall (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    problems = {"synthetic 20/4": synthetic, "make_friedman1 50/5": friedman}
    for name, make in problems.items():
        if args.only not in name:
            continue
        x, y, x_test, y_test, true, task = make()
        fits = {}
        if "l1reg" in fits_run:
            fits["l1reg lambda_path (cv, 1se, relaxed)"] = run_l1reg
        if "lassonet" in fits_run:
            fits["LassoNet CV (defaults)"] = run_lassonet
        for fit_name, run in fits.items():
            kept, score, seconds, _ = run(x, y, x_test, y_test, task, args.folds)
            relevant = len(set(kept) & set(true))
            shown = f"{len(kept)} {kept}" if len(kept) <= 8 else f"{len(kept)}"
            print(
                f"| {name} | {fit_name} | {shown} | {relevant}/{len(true)} | "
                f"{score:.3f} | {seconds:.1f} |",
                flush=True,
            )
        mlps = (("MLP, all inputs", list(range(x.shape[1]))), ("MLP, true inputs", true))
        for fit_name, columns in mlps if "mlp" in fits_run else ():
            score, seconds = plain_mlp(x, y, x_test, y_test, task, columns)
            print(
                f"| {name} | {fit_name} | {len(columns)} | {len(true)}/{len(true)} | "
                f"{score:.3f} | {seconds:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
