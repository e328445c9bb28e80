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
