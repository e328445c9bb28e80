"""Tests of ProximalL1's fused CPU step: Adam's (AdamW's) update and the prox in one pass."""

from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from l1reg.torch import L1Regularizer, ProximalL1  # noqa: E402
from l1reg.torch._cpu import _fused_adam, _threads  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Mixed(nn.Module):
    """Fused and not: float32 and float64 weights, a non-contiguous weight, unpenalized biases,
    and a penalized layer that gets no gradient."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.a = nn.Linear(10, 24)
        self.b = nn.Linear(24, 16, dtype=torch.float64)
        self.c = nn.Linear(16, 3)
        self.c.weight = nn.Parameter(torch.randn(16, 3).t() * 0.3)  # non-contiguous
        self.unused = nn.Linear(4, 4)

    def forward(self, x):
        h = torch.tanh(self.a(x))
        h = torch.tanh(self.b(h.double())).float()
        return self.c(h)


def _mlp(seed=0, widths=(24, 16)):
    torch.manual_seed(seed)
    first, second = widths
    return nn.Sequential(
        nn.Linear(10, first), nn.ReLU(), nn.Linear(first, second), nn.Tanh(), nn.Linear(second, 3)
    )


def _batches(count, n=32):
    generator = torch.Generator().manual_seed(5)
    out = []
    for _ in range(count):
        x = torch.randn(n, 10, generator=generator)
        out.append((x, (x[:, 0] + x[:, 1] > 0).long()))
    return out


def _train(model, optimizer, batches, scheduler=None):
    for x, y in batches:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


def _assert_same(model, twin, opt=None, opt_twin=None):
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        got, want = p.detach().numpy(), q.detach().numpy()
        # 1e-6 relative to each value and to the tensor's scale: p - t after the prox cancels
        scale = float(np.abs(want).max(initial=0))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * scale, err_msg=name)
        assert np.array_equal(got == 0, want == 0), name
        # exact zeros are +0.0, as the separate prox makes them
        assert np.array_equal(np.signbit(got[got == 0]), np.signbit(want[want == 0])), name
        if opt is not None and q in opt_twin.state:
            state, want_state = opt.state[p], opt_twin.state[q]
            assert state.keys() == want_state.keys(), name
            assert state["step"].dtype == want_state["step"].dtype
            assert state["step"].device == want_state["step"].device
            assert state["step"].item() == want_state["step"].item(), name
            for key in ("exp_avg", "exp_avg_sq"):
                assert state[key].stride() == want_state[key].stride()
                want_moment = want_state[key].numpy()
                np.testing.assert_allclose(
                    state[key].numpy(),
                    want_moment,
                    rtol=1e-5,
                    atol=1e-6 * np.abs(want_moment).max(initial=0),
                )


def _fused_params(monkeypatch):
    """Record the parameters that each fused step takes."""
    taken: list[set[int]] = []
    run = _fused_adam._fused_step

    def spy(optimizer, planned):
        taken.append({id(entry[0].param) for entry in planned})
        return run(optimizer, planned)

    monkeypatch.setattr(_fused_adam, "_fused_step", spy)
    return taken


@pytest.mark.parametrize(
    "make",
    [
        lambda p: torch.optim.Adam(p, lr=0.02),
        lambda p: torch.optim.Adam(p, lr=0.02, weight_decay=0.05),
        lambda p: torch.optim.AdamW(p, lr=0.02, weight_decay=0.3),
        lambda p: torch.optim.Adam(p, lr=0.02, weight_decay=0.05, maximize=True),
        lambda p: torch.optim.AdamW(p, lr=0.02, betas=(0.3, 0.9), eps=1e-6, maximize=True),
        lambda p: torch.optim.Adam(p, lr=0.02, fused=True),
        lambda p: torch.optim.Adam(p, lr=0.02, foreach=True),
        lambda p: torch.optim.Adam(p, lr=0.02, decoupled_weight_decay=True, weight_decay=0.3),
    ],
    ids=[
        "adam",
        "adam-l2",
        "adamw",
        "adam-maximize",
        "adamw-small-beta1-maximize",
        "adam-fused",
        "adam-foreach",
        "adam-decoupled",
    ],
)
def test_fused_step_equals_adam_then_prox(make, monkeypatch):
    taken = _fused_params(monkeypatch)
    model, twin = _mlp(), _mlp()
    opt = ProximalL1(make(model.parameters()), L1Regularizer(model, 0.02), fused=True)
    reference = ProximalL1(make(twin.parameters()), L1Regularizer(twin, 0.02), fused=False)
    batches = _batches(6)
    _train(model, opt, batches)
    _train(twin, reference, batches)
    assert len(taken) == 6
    assert taken[0] == {id(p) for p in L1Regularizer(model).parameters()}
    _assert_same(model, twin, opt.optimizer, reference.optimizer)
    assert sum(int((p == 0).sum()) for p in L1Regularizer(model).parameters()) > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_large_weights_and_threads(dtype, monkeypatch):
    # 400 x 400 weights in blocks of 1024 elements over 2 or 3 threads of torch's team, or in
    # the calling thread where no team is found: the same as one thread. The gradients are fixed
    # (a backward pass through matrix products may differ in the last bit with the thread count).
    results = []
    team = _threads.team()
    generator = torch.Generator().manual_seed(6)
    shapes = [p.shape for p in _mlp(widths=(400, 400)).parameters()]
    gradients = [
        [torch.randn(shape, generator=generator, dtype=dtype) for shape in shapes] for _ in range(3)
    ]
    for threads, per_thread, block, found in (
        (1, 1 << 18, 1 << 18, True),
        (2, 1 << 10, 1 << 10, True),
        (3, 1, 4096, True),
        (2, 1 << 10, 1 << 10, False),
    ):
        monkeypatch.setattr(_threads, "MIN_PER_THREAD", per_thread)
        monkeypatch.setattr(_threads, "BLOCK", block)
        monkeypatch.setattr(_threads, "team", lambda found=found: team if found else None)
        torch.set_num_threads(threads)
        try:
            model = _mlp(widths=(400, 400)).to(dtype)
            opt = ProximalL1(torch.optim.Adam(model.parameters(), lr=0.01), L1Regularizer(model))
            for step in gradients:
                for param, gradient in zip(model.parameters(), step):
                    param.grad = gradient.clone()
                opt.step()
        finally:
            torch.set_num_threads(1)
        results.append([p.detach().clone() for p in model.parameters()])
    for other in results[1:]:
        for p, q in zip(results[0], other):
            assert torch.equal(p, q)


def test_blocks_cover_every_element_once(monkeypatch):
    monkeypatch.setattr(_threads, "BLOCK", 1024)
    sizes = [5, 1 << 12, 0, 3, 1000, 1025, (1 << 13) + 7, 17, 0]
    blocks = _threads.blocks(sizes)
    seen = [np.zeros(n, dtype=int) for n in sizes]
    for k, start, stop in blocks:
        assert 0 <= start < stop <= sizes[k] or start == stop == sizes[k] == 0
        assert start % 1024 == 0 and stop - start <= 1024
        seen[k][start:stop] += 1
    assert all((s == 1).all() for s in seen)
    assert {(k, 0) for k in range(len(sizes))} <= {(k, start) for k, start, _ in blocks}
    assert [k for k, _, _ in blocks] == sorted(k for k, _, _ in blocks)


def test_mixed_parameters_fused_where_eligible(monkeypatch):
    taken = _fused_params(monkeypatch)
    model, twin = _Mixed(), _Mixed()
    opt = ProximalL1(torch.optim.Adam(model.parameters(), lr=0.02), L1Regularizer(model, 0.02))
    reference = ProximalL1(
        torch.optim.Adam(twin.parameters(), lr=0.02), L1Regularizer(twin, 0.02), fused=False
    )
    batches = _batches(5)
    _train(model, opt, batches)
    _train(twin, reference, batches)
    # a.weight (float32) and b.weight (float64); not c.weight (non-contiguous), not the biases
    # (not penalized), not unused.weight (no gradient: the prox alone, as without fusion)
    assert taken == [{id(model.a.weight), id(model.b.weight)}] * 5
    _assert_same(model, twin, opt.optimizer, reference.optimizer)
    assert model.b.weight.dtype == torch.float64
    assert model.b.weight.grad.dtype == torch.float64
    assert (model.c.weight == 0).any()
    shrunk = model.unused.weight.abs() < _Mixed().unused.weight.abs()  # by the prox alone
    assert shrunk.all()


@pytest.mark.parametrize("where", ["inner", "outer"])
def test_scheduler_and_tensor_lr(where):
    batches = _batches(6)

    def make(fused):
        model = _mlp()
        adam = torch.optim.AdamW(model.parameters(), lr=torch.tensor(0.03), weight_decay=0.1)
        opt = ProximalL1(adam, L1Regularizer(model, 0.02), fused=fused)
        scheduler = torch.optim.lr_scheduler.StepLR(
            adam if where == "inner" else opt, step_size=2, gamma=0.3
        )
        return model, opt, scheduler

    model, opt, scheduler = make(True)
    twin, reference, twin_scheduler = make(False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "lr_scheduler.step() before optimizer.step()"
        _train(model, opt, batches, scheduler)
        _train(twin, reference, batches, twin_scheduler)
    assert isinstance(opt.param_groups[0]["lr"], torch.Tensor)
    assert opt.param_groups[0]["lr"].item() == pytest.approx(0.03 * 0.3**3)
    _assert_same(model, twin, opt.optimizer, reference.optimizer)


def test_state_dict_round_trip_and_switching():
    batches = _batches(6)
    model = _mlp()
    reference = ProximalL1(
        torch.optim.Adam(model.parameters(), lr=0.02), L1Regularizer(model, 0.02), fused=False
    )
    _train(model, reference, batches)

    # fused=False, saved, loaded into fused=True, then back to fused=False by the attribute
    resumed = _mlp()
    opt = ProximalL1(
        torch.optim.Adam(resumed.parameters(), lr=0.02), L1Regularizer(resumed, 0.02), fused=False
    )
    _train(resumed, opt, batches[:2])
    saved = copy.deepcopy((resumed.state_dict(), opt.state_dict()))
    again = _mlp(seed=1)
    again.load_state_dict(saved[0])
    opt2 = ProximalL1(
        torch.optim.Adam(again.parameters(), lr=0.02), L1Regularizer(again, 0.02), fused=True
    )
    opt2.load_state_dict(saved[1])
    _train(again, opt2, batches[2:4])
    fused_state = opt2.state_dict()
    opt3 = ProximalL1(
        torch.optim.Adam(again.parameters(), lr=0.02), L1Regularizer(again, 0.02), fused=True
    )
    opt3.load_state_dict(copy.deepcopy(fused_state))
    opt3.fused = False
    _train(again, opt3, batches[4:5])
    opt3.fused = None
    _train(again, opt3, batches[5:])
    _assert_same(again, model, opt3.optimizer, reference.optimizer)
    # the fused step's state is torch's: the same keys, dtypes and step counts
    plain_state = reference.state_dict()["state"]
    for index, state in opt3.state_dict()["state"].items():
        assert {k: (v.dtype, v.shape) for k, v in state.items()} == {
            k: (v.dtype, v.shape) for k, v in plain_state[index].items()
        }


def test_closure_hooks_and_gradients():
    model, twin = _mlp(), _mlp()
    opt = ProximalL1(torch.optim.Adam(model.parameters(), lr=0.02), L1Regularizer(model, 0.02))
    reference = ProximalL1(
        torch.optim.Adam(twin.parameters(), lr=0.02), L1Regularizer(twin, 0.02), fused=False
    )
    weights = list(L1Regularizer(model).parameters())
    calls = []

    def pre_hook(optimizer, args, kwargs):
        # the user's pre-hooks see every gradient (the fused step plans after them)
        calls.append(("pre", all(p.grad is not None for p in model.parameters())))

    def post_hook(optimizer, args, kwargs):
        # ... and the user's post-hooks see every parameter updated
        calls.append(("post", all(not torch.equal(p, b) for p, b in zip(weights, before))))

    opt.optimizer.register_step_pre_hook(pre_hook)
    opt.optimizer.register_step_post_hook(post_hook)
    for x, y in _batches(3):
        before = [p.detach().clone() for p in weights]
        evaluated = []

        def closure(model=model, x=x, y=y, evaluated=evaluated):
            assert torch.is_grad_enabled()
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            evaluated.append(loss)
            return loss

        with torch.no_grad():
            loss = opt.step(closure)
        assert len(evaluated) == 1 and loss is evaluated[0]
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None for g in grads)  # given back after the step
        reference.zero_grad()
        nn.functional.cross_entropy(twin(x), y).backward()
        reference.step()
    assert calls == [("pre", True), ("post", True)] * 3
    # ours are removed
    assert list(opt.optimizer._optimizer_step_pre_hooks.values()) == [pre_hook]
    assert list(opt.optimizer._optimizer_step_post_hooks.values()) == [post_hook]
    _assert_same(model, twin)


def test_gradients_given_back_when_adam_raises():
    model = _mlp()
    table = nn.Embedding(5, 3, sparse=True)  # Adam raises on its sparse gradient
    adam = torch.optim.Adam([*model.parameters(), *table.parameters()], lr=0.02)
    opt = ProximalL1(adam, L1Regularizer(model, 0.02))
    x, y = _batches(1)[0]
    loss = nn.functional.cross_entropy(model(x), y) + table(torch.tensor([1, 2])).sum()
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(RuntimeError, match="sparse gradients"):
        opt.step()
    assert all(p.grad is g for p, g in zip(model.parameters(), grads))
    weights = {id(p) for p in L1Regularizer(model).parameters()}
    for p, b in zip(model.parameters(), before):
        if id(p) in weights:
            assert torch.equal(p, b)  # the fused step runs after Adam's, which failed
    assert not adam._optimizer_step_pre_hooks and not adam._optimizer_step_post_hooks


def test_fused_true_errors():
    model = _Mixed()
    reg = L1Regularizer(model, 0.02)
    with pytest.raises(TypeError, match=r"'fused' parameter of ProximalL1 .* Got 'yes'"):
        ProximalL1(torch.optim.Adam(model.parameters()), reg, fused="yes")
    with pytest.raises(ValueError, match=r"'fused' parameter .* for a SGD .* Got True"):
        ProximalL1(torch.optim.SGD(model.parameters(), lr=0.1), reg, fused=True)
    with pytest.raises(ValueError, match=r"'fused' parameter .* metric='plain'"):
        ProximalL1(torch.optim.Adam(model.parameters()), reg, metric="plain", fused=True)
    grouped = L1Regularizer(model, 0.02, groups="input")
    with pytest.raises(ValueError, match=r"'fused' parameter .* group penalty \(on 'a\.weight'"):
        ProximalL1(torch.optim.Adam(model.parameters()), grouped, fused=True)

    x, y = _batches(1)[0]
    cases = [
        (torch.optim.Adam(model.parameters()), r"'c\.weight' \(it is not contiguous\)"),
        (
            torch.optim.Adam(model.parameters(), amsgrad=True),
            r"'a\.weight' \(its param group has amsgrad=True\)",
        ),
    ]
    for adam, message in cases:
        opt = ProximalL1(adam, reg, fused=True)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        before = [p.detach().clone() for p in model.parameters()]
        with pytest.raises(ValueError, match=r"The 'fused' parameter of ProximalL1 .*" + message):
            opt.step()
        # raised before any work, with every gradient in place
        assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
        assert all(p.grad is not None for n, p in model.named_parameters() if "unused" not in n)
        assert not adam.state


def test_no_fusion_for_other_optimizers_and_plain_metric(monkeypatch):
    taken = _fused_params(monkeypatch)
    batches = _batches(2)

    class MyAdam(torch.optim.Adam):
        pass

    for make, metric in [
        (lambda p: torch.optim.NAdam(p, lr=0.01), "optimizer"),
        (lambda p: MyAdam(p, lr=0.01), "optimizer"),
        (lambda p: torch.optim.Adam(p, lr=0.01), "plain"),
    ]:
        model = _mlp()
        opt = ProximalL1(make(model.parameters()), L1Regularizer(model, 0.05), metric=metric)
        _train(model, opt, batches)
    model = _mlp()
    opt = ProximalL1(torch.optim.Adam(model.parameters()), L1Regularizer(model, 0.05), fused=False)
    _train(model, opt, batches)
    assert taken == []


def test_nan_and_inf_like_torch():
    model, twin = _mlp(), _mlp()
    opt = ProximalL1(torch.optim.Adam(model.parameters(), lr=0.02), L1Regularizer(model, 0.02))
    reference = ProximalL1(
        torch.optim.Adam(twin.parameters(), lr=0.02), L1Regularizer(twin, 0.02), fused=False
    )
    for m, o in ((model, opt), (twin, reference)):
        for p in m.parameters():
            p.grad = torch.ones_like(p)
        m[0].weight.grad[0, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
        o.step()
    got, want = model[0].weight.detach().numpy(), twin[0].weight.detach().numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_pickle_and_repr():
    model = _mlp()
    opt = ProximalL1(torch.optim.Adam(model.parameters()), L1Regularizer(model), fused=True)
    _train(model, opt, _batches(1))
    assert repr(opt).endswith("metric='optimizer', fused=True)")
    default = ProximalL1(torch.optim.Adam(model.parameters()), opt.regularizer)
    assert repr(default).endswith("metric='optimizer')")
    copied = pickle.loads(pickle.dumps(opt))
    assert copied.fused is True
    state = opt.__dict__.copy()
    del state["fused"]
    old = ProximalL1.__new__(ProximalL1)
    old.__setstate__(state)  # pickled before the fused step existed
    assert old.fused is None


def test_new_tensors_between_steps():
    # The fused step keeps NumPy views of the tensors between steps: they must follow a state
    # loaded into the same optimizer and a parameter given new memory.
    batches = _batches(4)
    results = []
    for fused in (None, False):
        model = _mlp()
        opt = ProximalL1(
            torch.optim.Adam(model.parameters(), lr=0.02), L1Regularizer(model, 0.02), fused=fused
        )
        _train(model, opt, batches[:1])
        saved = copy.deepcopy(opt.state_dict())
        _train(model, opt, batches[1:2])
        opt.load_state_dict(saved)
        _train(model, opt, batches[2:3])
        with torch.no_grad():
            model[0].weight.data = model[0].weight.data.clone()
            model[2].weight.data = model[2].weight.data.t().contiguous().t()  # not contiguous
        _train(model, opt, batches[3:])
        results.append((model, opt))
    (model, opt), (twin, reference) = results
    _assert_same(model, twin, opt.optimizer, reference.optimizer)


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
def test_empty_parameter_counts_its_steps(monkeypatch):
    monkeypatch.setattr(_threads, "MIN_PER_THREAD", 64)
    monkeypatch.setattr(_threads, "BLOCK", 256)
    torch.set_num_threads(2)
    try:
        results = []
        for fused in (None, False):
            torch.manual_seed(0)
            empty, layer = nn.Linear(0, 3), nn.Linear(3, 300)
            model = nn.ModuleList([empty, layer])
            opt = ProximalL1(
                torch.optim.Adam(model.parameters(), lr=0.01), L1Regularizer(model), fused=fused
            )
            for _ in range(2):
                opt.zero_grad()
                layer(empty(torch.randn(4, 0))).square().sum().backward()
                opt.step()
            results.append((model, opt))
    finally:
        torch.set_num_threads(1)
    (model, opt), (twin, reference) = results
    assert opt.state[model[0].weight]["step"].item() == 2
    _assert_same(model, twin, opt.optimizer, reference.optimizer)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: torch.optim.Adam(p, lr=0.02, weight_decay=0.05, fused=True),
        lambda p: torch.optim.AdamW(p, lr=0.02, betas=(0.3, 0.9), maximize=True, fused=True),
    ],
    ids=["adam-l2", "adamw-maximize"],
)
def test_without_penalty_the_step_is_torchs_fused_adam(make, monkeypatch):
    # With lambda_reg = 0 the kernel is Adam's step alone: torch's fused CPU Adam's to the bit
    # where torch's vectorized kernels have fused multiply-adds (AVX2, AVX-512).
    taken = _fused_params(monkeypatch)
    model, twin = _Mixed(), _Mixed()
    opt = ProximalL1(make(model.parameters()), L1Regularizer(model, 0.0))
    adam = make(twin.parameters())
    _train(model, opt, _batches(4))
    _train(twin, adam, _batches(4))
    assert taken == [{id(model.a.weight), id(model.b.weight)}] * 4
    bitwise = torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        if bitwise:
            assert torch.equal(p, q), name
            if q in adam.state:
                for key in ("exp_avg", "exp_avg_sq"):
                    assert torch.equal(opt.state[p][key], adam.state[q][key]), name
        else:
            torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
