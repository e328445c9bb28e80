"""l1reg.torch.lambda_path and its result, NeuralPath: selections on small seeded problems, the
definition of lambda_max, the 1-SE rule, the selection frequencies, any module, pickling."""

from __future__ import annotations

import functools
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import l1reg.torch as lt  # noqa: E402
from l1reg.linear_model._cv import one_standard_error_alpha  # noqa: E402
from l1reg.torch import _path_fit  # noqa: E402

# Small and seeded: every path here runs in seconds on one thread (a coarser grid that starts
# nearer lambda_max, shorter plateaus, larger steps than the defaults).
FAST = {
    "lambdas": 12,
    "lambda_min_ratio": 0.1,
    "epochs": 100,
    "patience": 3,
    "batch_size": 128,
    "optimizer": functools.partial(torch.optim.Adam, lr=3e-3),
    "progress": False,
}


def _mlp(p: int, out: int, hidden: int = 32, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(p, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, out),
    )


def _synthetic(n: int = 600, p: int = 20, seed: int = 0):
    """Classes from 4 inputs, none of them linearly: x0 x1, x2^2 and sin(2 x3)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, p))
    z = 2 * x[:, 0] * x[:, 1] + 1.5 * (x[:, 2] ** 2 - 1) + 2 * np.sin(2 * x[:, 3])
    y = (z + 0.3 * rng.standard_normal(n) > 0).astype(np.int64)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def _friedman(n: int = 600, p: int = 15, seed: int = 0):
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n, p, noise=1.0, random_state=seed)
    x = (x - x.mean(0)) / x.std(0)
    y = (y - y.mean()) / y.std()
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)[:, None]


@pytest.fixture(scope="module")
def cv_path():
    torch.set_num_threads(1)
    x, y = _friedman(n=240, p=8, seed=3)
    args = {**FAST, "lambdas": 10, "epochs": 40}
    path = lt.lambda_path(_mlp(8, 1, 16), nn.MSELoss(), (x, y), cv=3, n_jobs=1, **args)
    return path


def _at_most_one_irrelevant(selected: list[int], relevant: set[int]) -> None:
    assert relevant <= set(selected), selected
    assert len(set(selected) - relevant) <= 1, selected


def test_synthetic_classification_keeps_the_four_relevant_inputs():
    torch.set_num_threads(1)
    x, y = _synthetic()
    path = lt.lambda_path(_mlp(20, 2), nn.CrossEntropyLoss(), (x, y), **FAST)
    _at_most_one_irrelevant(path.selected_features_, {0, 1, 2, 3})
    # the chosen model is pruned: its first layer reads only the kept inputs
    first = path.model_[0]
    assert isinstance(first[0], lt.SelectInputs)
    assert first[1].in_features == len(path.selected_features_)
    x_test, y_test = _synthetic(n=1000, seed=1)
    with torch.no_grad():
        accuracy = (path.model_(x_test).argmax(1) == y_test).float().mean()
    assert accuracy > 0.85


def test_friedman_keeps_the_five_relevant_inputs():
    torch.set_num_threads(1)
    x, y = _friedman()
    path = lt.lambda_path(_mlp(15, 1), nn.MSELoss(), (x, y), **FAST)
    _at_most_one_irrelevant(path.selected_features_, {0, 1, 2, 3, 4})
    # the relevant inputs are the last to leave the model
    ranking = np.argsort(-path.feature_importances_, kind="stable")
    assert set(ranking[:4]) <= {0, 1, 2, 3, 4}


def test_lambda_max_is_where_a_zero_group_stays_zero():
    # One full-batch Adam step with the prox from the dense solution with the first layer at 0:
    # just above lambda_max no input comes back, just below some do.
    torch.set_num_threads(1)
    x, y = _synthetic(n=200)
    model = _mlp(20, 2)
    reg = lt.L1Regularizer(model, groups="input", include=["0.weight"])
    split = _path_fit.Split((x, y), 200, x[:50], y[:50])
    settings = _path_fit.Settings(epochs=30, patience=5, relax=None)
    make = functools.partial(torch.optim.Adam, lr=1e-2)
    _path_fit.dense_fit(model, nn.CrossEntropyLoss(), split, make, settings)
    top = _path_fit.lambda_max(model, nn.CrossEntropyLoss(), split, reg)
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    kept = {}
    for factor in (1.001, 0.999, 0.5):
        model.load_state_dict(dense)
        with torch.no_grad():
            model[0].weight.zero_()
        reg.lambda_reg = top * factor
        step = lt.ProximalL1(make(model.parameters()), reg)
        step.zero_grad()
        nn.CrossEntropyLoss()(model(x), y).backward()
        step.step()
        kept[factor] = len(lt.selected_features(model))
    assert kept[1.001] == 0
    assert 1 <= kept[0.999] < kept[0.5]


def test_lambda_1se_is_the_rule_of_lasso_cv_on_the_recorded_losses(cv_path):
    path = cv_path
    best, one_se = one_standard_error_alpha(path.lambdas_, path.val_loss_path_)
    assert path.lambda_min_ == path.lambdas_[best]
    assert path.lambda_1se_ == path.lambdas_[one_se]
    assert path.lambda_1se_ >= path.lambda_min_
    mean, se = path.val_loss_mean_, path.val_loss_se_
    within = mean <= mean[best] + se[best]
    assert path.lambda_1se_ == path.lambdas_[within].max()
    assert path.lambda_ == path.lambda_1se_  # select="1se"
    assert path.selected_features_ == path.selected_1se_
    assert path.val_loss_path_.shape == (path.lambdas_.shape[0], 3)
    assert np.all(np.diff(path.lambdas_) < 0)


def test_selection_frequencies_are_the_share_of_folds(cv_path):
    path = cv_path
    folds = path.fold_support_path_
    assert folds.shape == (3, path.lambdas_.shape[0], 8)
    frequency = path.selection_frequency_path_
    assert np.all((frequency >= 0) & (frequency <= 1))
    np.testing.assert_array_equal(frequency * 3, folds.sum(axis=0))
    np.testing.assert_array_equal(path.selection_frequency_, frequency[path.index_])
    np.testing.assert_array_equal(path.support_path_, frequency >= 0.5)  # the folds' majority
    # the strongest strength keeps fewer inputs in every fold than the weakest
    assert np.all(folds[:, 0].sum(axis=1) < folds[:, -1].sum(axis=1))
    assert not np.all(frequency == frequency[0])


def test_result_table_plots_and_pickle(cv_path):
    path = cv_path
    frame = path.to_frame()
    assert list(frame.columns) == [
        "lambda", "n_selected", "val_loss_mean", "val_loss_se", "train_seconds", "selected"
    ]  # fmt: skip
    assert len(frame) == path.lambdas_.shape[0]
    assert frame["n_selected"].tolist() == [len(s) for s in frame["selected"]]
    assert np.all(path.train_seconds_ > 0)
    loss, norms = path.plot(feature_names=[f"f{j}" for j in range(8)])
    assert "lambda" in loss.axes[0].get_xlabel()
    assert norms.axes[0].get_lines()
    again = pickle.loads(pickle.dumps(path))
    np.testing.assert_array_equal(again.val_loss_path_, path.val_loss_path_)
    assert again.selected_features_ == path.selected_features_
    x = torch.randn(5, 8)
    with torch.no_grad():
        torch.testing.assert_close(again.model_(x), path.model_(x))
    with pytest.raises(ValueError, match=r"'feature_names' parameter of NeuralPath.plot"):
        path.plot(feature_names=["a"])


class _Residual(nn.Module):
    """Not an MLP: a residual block between the input layer and the head."""

    def __init__(self, p: int) -> None:
        super().__init__()
        self.inputs = nn.Linear(p, 24)
        self.block = nn.Sequential(nn.ReLU(), nn.Linear(24, 24), nn.Tanh())
        self.head = nn.Linear(24, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inputs(x))
        return self.head(h + self.block(h))


def test_a_model_with_a_skip_connection_and_a_dataloader():
    torch.set_num_threads(1)
    x, y = _friedman(n=500, p=10, seed=1)
    torch.manual_seed(0)
    model = _Residual(10)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x[:400], y[:400]), batch_size=50, shuffle=True
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.random.get_rng_state()
    path = lt.lambda_path(model, nn.MSELoss(), loader, val=(x[400:], y[400:]), **FAST)
    _at_most_one_irrelevant(path.selected_features_, {0, 1, 2, 3, 4})
    # the caller's model and random generator are as they were
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert torch.equal(state, torch.random.get_rng_state())
    with torch.no_grad():
        assert path.model_(x[:3]).shape == (3, 1)


def test_a_small_cnn_selects_its_input_channels():
    # Conv1d over 6 channels; the target depends on channels 1 and 4 only (4 not linearly).
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, 12, generator=generator)
    y = 2 * x[:, 1].mean(dim=1, keepdim=True) + 2 * x[:, 4].abs().mean(dim=1, keepdim=True)
    y = y - y.mean()
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(6, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(96, 16), nn.ReLU(),
        nn.Linear(16, 1),
    )  # fmt: skip
    reg = lt.L1Regularizer(model, groups="input", include=[model[0].weight])
    path = lt.lambda_path(model, nn.MSELoss(), (x, y), reg=reg, **FAST)
    assert path.selected_features_ == [1, 4]
    assert path.support_path_.shape[1] == 6


def test_folds_in_spawned_processes_agree_with_one_process():
    x, y = _synthetic(n=120, p=5, seed=2)
    args = {**FAST, "cv": 2, "lambdas": 6, "epochs": 10, "patience": 2}
    one = lt.lambda_path(_mlp(5, 2, 8), nn.CrossEntropyLoss(), (x, y), n_jobs=1, **args)
    two = lt.lambda_path(_mlp(5, 2, 8), nn.CrossEntropyLoss(), (x, y), n_jobs=2, **args)
    np.testing.assert_array_equal(one.lambdas_, two.lambdas_)
    np.testing.assert_array_equal(one.fold_support_path_, two.fold_support_path_)
    np.testing.assert_allclose(one.val_loss_path_, two.val_loss_path_, rtol=1e-4)


def test_warm_refits_and_the_least_loss():
    # relax="warm" refits from the path on all the data; select="min" returns lambda_min.
    torch.set_num_threads(1)
    x, y = _friedman(n=200, p=6, seed=4)
    args = {**FAST, "lambdas": 8, "epochs": 30}
    path = lt.lambda_path(
        _mlp(6, 1, 8), nn.MSELoss(), (x, y), cv=2, n_jobs=1, relax="warm", select="min", **args
    )
    assert path.lambda_ == path.lambda_min_
    assert path.selected_features_ == path.selected_min_
    kept = path.selected_features_
    first = path.model_[0]
    width = first[1].in_features if isinstance(first, nn.Sequential) else first.in_features
    assert width == len(kept) and kept
    assert "NeuralPath(" in repr(path)


def test_bad_parameters_are_refused_by_name():
    x, y = _synthetic(n=40, p=4)
    model = _mlp(4, 2, 4)
    loss = nn.CrossEntropyLoss()
    with pytest.raises(ValueError, match=r"'reg' parameter of lambda_path"):
        lt.lambda_path(model, loss, (x, y), reg=lt.L1Regularizer(_mlp(4, 2, 4)))
    with pytest.raises(ValueError, match=r"'cv' parameter of lambda_path .* Got 41"):
        lt.lambda_path(model, loss, (x, y), cv=41)
    with pytest.raises(TypeError, match=r"'optimizer' parameter of lambda_path"):
        lt.lambda_path(model, loss, (x, y), optimizer=torch.optim.Adam(model.parameters()))
    with pytest.raises(ValueError, match=r"'train' parameter of lambda_path"):
        lt.lambda_path(model, loss, (x, y[:-1]))
    with pytest.raises(ValueError, match=r"'lambda_min_ratio' parameter of lambda_path"):
        lt.lambda_path(model, loss, (x, y), lambda_min_ratio=1.0)
    with pytest.raises(ValueError, match=r"'relax' parameter of lambda_path .* Got 'cold'"):
        lt.lambda_path(model, loss, (x, y), relax="cold")
