"""Cases of l1reg.torch: the penalty, the optimizer wrapper, pruning and the reports."""

from __future__ import annotations

from house import Case


def _model():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))


def _stepper_args():
    import torch

    import l1reg.torch

    model = _model()
    return {
        "optimizer": torch.optim.Adam(model.parameters(), lr=0.01),
        "regularizer": l1reg.torch.L1Regularizer(model, 0.01),
        "metric": "optimizer",
        "relax_after": 3,
        "fused": None,
    }


def _example():
    import torch

    return torch.zeros(2, 4)


CASES = [
    Case(
        "l1reg.torch.L1Regularizer",
        lambda: {
            "module": _model(),
            "lambda_reg": {"*": 0.01},
            "include": ["*weight"],
            "exclude": ["2.weight"],
            "groups": "input",
        },
    ),
    Case("l1reg.torch.ProximalL1", _stepper_args),
    Case("l1reg.torch.SelectInputs", lambda: {"indices": [0, 2], "dim": 1, "device": "cpu"}),
    Case(
        "l1reg.torch.l1_norm",
        lambda: {"tensors": list(_model().parameters())},
        work=("l1reg.torch._fused:_local_l1_norm",),
    ),
    Case(
        "l1reg.torch.prune",
        lambda: {"module": _model(), "example_input": _example()},
        work=("l1reg.torch._inspect:_trace",),
    ),
    Case(
        "l1reg.torch.selected_features",
        lambda: {"module": _model()},
        work=("l1reg.torch._inspect:_to_numpy",),
    ),
    Case(
        "l1reg.torch.sparsity",
        lambda: {"module": _model(), "include": ["*weight"], "exclude": ["2.weight"]},
        work=("l1reg.torch._inspect:sparsity_report",),
    ),
]


def _path_args():
    import functools

    import torch

    import l1reg.torch

    model = _model()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(24, 4, generator=generator)
    y = x[:, :1] ** 2
    return {
        "model": model,
        "loss_fn": torch.nn.MSELoss(),
        "train": (x, y),
        "val": (x[:8], y[:8]),
        "cv": 2,
        "reg": l1reg.torch.L1Regularizer(model, groups="input", include=["0.weight"]),
        "optimizer": functools.partial(torch.optim.Adam, lr=0.01),
        "lambdas": 4,
        "lambda_min_ratio": 0.1,
        "epochs": 2,
        "patience": 1,
        "relax": "fresh",
        "select": "1se",
        "batch_size": 8,
        "n_jobs": 1,
        "seed": 0,
        "progress": False,
    }


def _neural_path():
    import numpy as np

    from l1reg.neural_path import NeuralPath

    lambdas = np.geomspace(1.0, 0.01, 5)
    support = np.tril(np.ones((5, 3), dtype=bool), -1)[:, ::-1] | np.eye(5, 3, dtype=bool)
    return NeuralPath(
        lambdas=lambdas,
        lambda_max=1.0,
        val_loss=np.linspace(1.0, 0.5, 5)[:, None] + np.arange(3) * 0.01,
        support=support,
        group_norms=support * 0.5,
        train_seconds=np.ones(5),
        fold_support=np.stack([support] * 3),
        exit_lambdas=np.ones(3),
        select="1se",
        unit="folds",
    )


CASES += [
    Case("l1reg.torch.lambda_path", _path_args, work=("l1reg.torch._path:_Job",)),
    Case(
        "l1reg.torch.NeuralPath.plot",
        lambda: {"self": _neural_path(), "feature_names": ["a", "b", "c"]},
        work=("l1reg.plotting:plot_cv_error",),
    ),
]
