"""Tests of l1reg.torch: the fused penalty, L1Regularizer, ProximalL1, sparsity and prune."""

from __future__ import annotations

import copy
import math
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

import l1reg  # noqa: E402
from l1reg.torch import (  # noqa: E402
    L1Regularizer,
    ProximalL1,
    SelectInputs,
    _cpu,
    _eager,
    l1_norm,
    prune,
    selected_features,
    sparsity,
)
from l1reg.torch._cpu import _threads  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _mlp(device, seed=0, widths=(16, 8)):
    # widths=(400, 400) gives a 400 x 400 weight: the CPU's chunked in-place path, over 2 chunks.
    torch.manual_seed(seed)
    first, second = widths
    return nn.Sequential(
        nn.Linear(10, first), nn.ReLU(), nn.Linear(first, second), nn.Tanh(), nn.Linear(second, 3)
    ).to(device)


# --------------------------------------------------------------------------- the fused sum


def test_seed_example_on_torch(device):
    weights = [
        torch.tensor([[1.0, -2.0], [0.5, 0.0]], device=device),
        torch.tensor([-1.0, 3.0], device=device),
    ]
    value = l1reg.l1_regularization(weights, lambda_reg=0.01)
    assert isinstance(value, torch.Tensor)
    assert value.item() == pytest.approx(0.075, rel=1e-6)  # float32


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40_000), min_size=1, max_size=12),
    zeros=st.floats(0.0, 0.9),
    seed=st.integers(0, 2**16),
)
def test_values_and_gradients_agree_with_numpy(sizes, zeros, seed):
    # Sizes on both sides of the small/large split and of the scratch buffer.
    generator = torch.Generator().manual_seed(seed)
    tensors = []
    for size in sizes:
        values = torch.randn(size, generator=generator, dtype=torch.float64)
        values[torch.rand(size, generator=generator) < zeros] = 0
        tensors.append(values.requires_grad_())
    value = l1reg.l1_regularization(tensors, lambda_reg=0.5)
    arrays = [t.detach().numpy() for t in tensors]
    assert value.item() == pytest.approx(float(l1reg.l1_regularization(arrays, 0.5)), rel=1e-12)
    value.backward()
    for tensor, array in zip(tensors, arrays):
        np.testing.assert_array_equal(tensor.grad.numpy(), 0.5 * np.sign(array))


def test_large_tensor_is_exact():
    # A float32 running sum (torch.norm(p, 1) on the CPU) stops at 2**24 = 16,777,216.
    n = 2**24 + 1000
    value = l1_norm([torch.ones(n), torch.full((3,), -2.0)])
    assert value.dtype == torch.float32
    assert value.item() == n + 6


def test_bfloat16_sums_in_float32():
    generator = torch.Generator().manual_seed(0)
    n = 50_000_000
    values = (torch.rand(n, generator=generator) * 2 - 1).to(torch.bfloat16)
    reference = sum(chunk.double().abs().sum().item() for chunk in values.split(1 << 22))
    value = l1_norm([values])
    assert value.dtype == torch.float32
    assert abs(value.item() - reference) / reference < 1e-6


def test_gradient_is_zero_at_zero_and_keeps_dtype(device):
    weight = torch.tensor([0.0, -0.0, 2.0, -3.0], device=device, dtype=torch.bfloat16)
    weight.requires_grad_()
    other = torch.tensor([[0.0, 1.0]], device=device, requires_grad=True)
    (2 * l1_norm([weight, other])).backward()
    assert weight.grad.dtype == torch.bfloat16
    assert weight.grad.tolist() == [0.0, 0.0, 2.0, -2.0]
    assert other.grad.tolist() == [[0.0, 2.0]]


def test_mixed_dtypes_integers_and_empty(device):
    tensors = [
        torch.tensor([1.5, -2.0], device=device, dtype=torch.float16),
        torch.tensor([-3, 4], device=device),
        torch.tensor([0.25], device=device, dtype=torch.float64),
        torch.empty(0, device=device),
    ]
    value = l1_norm(tensors)
    assert value.dtype == torch.float64
    assert value.item() == 10.75
    assert l1reg.l1_regularization([], 0.1) == 0


def test_complex_tensors_sum_their_moduli(device):
    z = torch.tensor([3 + 4j, 0j], device=device, requires_grad=True)
    x = torch.tensor([-1.0], device=device, requires_grad=True)
    value = l1_norm([z, x])
    assert value.item() == pytest.approx(6.0)
    value.backward()
    assert z.grad.cpu().tolist() == pytest.approx([0.6 + 0.8j, 0j])  # sgn(z), 0 at 0
    assert x.grad.item() == -1.0


def test_many_small_and_large_tensors_match_textbook_loop(device):
    generator = torch.Generator().manual_seed(3)
    shapes = [(int(n),) for n in torch.randint(1, 3000, (300,), generator=generator)]
    shapes += [(600, 700), (300_001,)]  # larger than the CPU scratch buffer: split into pieces
    tensors = [torch.randn(s, generator=generator).to(device).requires_grad_() for s in shapes]
    value = l1_norm(tensors)
    expected = sum(t.detach().double().abs().sum() for t in tensors)
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)
    value.backward()
    for tensor in tensors:
        assert torch.equal(tensor.grad, torch.sign(tensor.detach()))


def test_compiled_cpu_loop_propagates_nan_and_supports_double_backward():
    # Contiguous float32/float64 CPU tensors of 16384+ values go through the compiled loops.
    generator = torch.Generator().manual_seed(4)
    weight = torch.randn(40_000, generator=generator).requires_grad_()
    weight.data[::7] = 0
    nan = torch.randn(20_000, dtype=torch.float64)
    nan[123] = float("nan")
    assert math.isnan(l1_norm([weight, nan]).item())
    transposed = torch.randn(300, 200, generator=generator).t()  # not contiguous: eager path
    assert l1_norm([transposed]).item() == pytest.approx(transposed.abs().sum().item(), rel=1e-6)
    # create_graph=True: the gradient lam * sign(w) stays differentiable in lam.
    lam = torch.tensor(0.5, requires_grad=True)
    (grad,) = torch.autograd.grad(lam * l1_norm([weight]), weight, create_graph=True)
    assert torch.equal(grad.detach(), 0.5 * torch.sign(weight.detach()))
    (dlam,) = torch.autograd.grad(grad.sum(), lam)
    assert dlam.item() == torch.sign(weight.detach()).sum().item()


def test_gradient_memory_is_reused_only_once_nothing_holds_it():
    # The compiled backward writes into the previous gradient's memory when it is free, which
    # must never change a gradient, or a view of one, that is still held.
    weight = torch.randn(200, 200, generator=torch.Generator().manual_seed(6)).requires_grad_()
    sign = torch.sign(weight.detach())
    l1_norm([weight]).backward()
    address = weight.grad.data_ptr()
    weight.grad = None
    l1_norm([weight]).backward()
    assert weight.grad.data_ptr() == address  # free: reused
    kept, view = weight.grad, weight.grad[3]
    weight.grad = None
    (2 * l1_norm([weight])).backward()
    assert weight.grad.data_ptr() != address
    assert torch.equal(weight.grad, 2 * sign) and torch.equal(kept, sign)
    del kept
    weight.grad = None
    (3 * l1_norm([weight])).backward()  # the view still holds the memory
    assert torch.equal(view, sign[3]) and torch.equal(weight.grad, 3 * sign)
    # An existing gradient is added to (zero_grad(set_to_none=False), accumulation), and a
    # gradient from the data goes into the same sum.
    x = torch.randn(200, 200)
    ((weight * x).sum() + l1_norm([weight])).backward()
    assert torch.allclose(weight.grad, 4 * sign + x, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_loops_on_torchs_threads_match_one_thread(dtype, monkeypatch):
    # Blocks of 4096 values shared by 2 threads of torch's OpenMP team (where it is found): the
    # same sum, bit for bit, and the same gradient as in the calling thread alone.
    monkeypatch.setattr(_threads, "BLOCK", 4096)
    monkeypatch.setattr(_threads, "MIN_PER_THREAD", 4096)
    team = _threads.team()
    teams = []  # the number of threads of each call on the team

    def counted(worker, job, threads, flags):
        teams.append(threads)
        team(worker, job, threads, flags)

    if team is not None:
        monkeypatch.setattr(_threads, "team", lambda: counted)
    generator = torch.Generator().manual_seed(5)
    tensors = [
        torch.randn(n, generator=generator, dtype=dtype).requires_grad_()
        for n in (100_003, 20_000, 16_384, 65_537)
    ]
    results = []
    # 1 thread; 2 on the team; 2 where no team is found (the calling thread alone)
    for threads, found in ((1, True), (2, True), (2, False)):
        torch.set_num_threads(threads)
        if not found:
            monkeypatch.setattr(_threads, "team", lambda: None)
        for tensor in tensors:
            tensor.grad = None
        value = l1_norm(tensors)
        value.backward()
        results.append((value.item(), [t.grad.clone() for t in tensors]))
    torch.set_num_threads(1)
    expected = sum(t.detach().double().abs().sum() for t in tensors)
    assert results[0][0] == pytest.approx(expected.item(), rel=1e-6)
    for value, grads in results[1:]:
        assert value == results[0][0]
        for one, other, tensor in zip(results[0][1], grads, tensors):
            assert torch.equal(one, other) and torch.equal(one, torch.sign(tensor.detach()))
    if team is not None:
        assert teams == [2, 2]  # forward and backward on the team, then none


_FORK_SCRIPT = """
import os, signal, sys
import torch
from l1reg.torch import l1_norm
from l1reg.torch._cpu import _threads

_threads.MIN_PER_THREAD = 1
torch.set_num_threads(2)
tensors = [torch.randn(100_000).requires_grad_() for _ in range(3)]
expected = l1_norm(tensors).item()  # on the team, where it is found
pid = os.fork()
if pid == 0:  # the child: killed by the alarm if it hangs; exits whatever happens
    signal.alarm(20)
    try:
        value = l1_norm(tensors)
        value.backward()
        ok = value.item() == expected and all(t.grad is not None for t in tensors)
    except BaseException as error:
        print("child:", repr(error), file=sys.stderr)
        ok = False
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
print("child status", status)
sys.exit(0 if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else 1)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_runs_the_compiled_loops_in_its_own_thread():
    # GNU OpenMP is not fork-safe: after the parent ran a parallel region, a child's next one
    # hangs. The compiled loops must not start one there (the child runs them in one thread).
    # In a new interpreter: a fork of the test process would copy its other threads' state
    # (autograd's CUDA threads, compile workers), which is not what is tested here.
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", _FORK_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_torchs_openmp_team_is_found_where_torch_ships_its_runtime():
    # The wheels of torch for Linux ship their OpenMP runtime (torch/lib); the compiled loops must
    # find it there, even with scikit-learn's copy of libgomp loaded too.
    import sklearn.linear_model  # noqa: F401  (loads scikit-learn's OpenMP runtime)

    home = os.path.dirname(torch.__file__)
    try:
        with open("/proc/self/maps") as maps:
            shipped = any(home + os.sep in line and "omp" in line for line in maps)
    except OSError:
        shipped = False
    if not shipped:
        pytest.skip("this torch does not load an OpenMP runtime of its own")
    _threads.team.cache_clear()
    assert _threads.team() is not None


# --------------------------------------------------------------------------- L1Regularizer


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 4)
        self.conv = nn.Conv1d(4, 6, kernel_size=3)
        self.norm = nn.BatchNorm1d(6)
        self.head = nn.Linear(6, 2)

    def forward(self, tokens):
        h = self.embed(tokens).transpose(1, 2)
        h = self.norm(self.conv(h)).mean(dim=2)
        return self.head(h)


def test_default_selection_is_layer_weights():
    net = _Net()
    reg = L1Regularizer(net)
    assert [name for name, _ in reg.named_parameters()] == [
        "embed.weight",
        "conv.weight",
        "head.weight",
    ]
    weights = [p.detach().numpy() for p in reg.parameters()]
    expected = 0.01 * sum(np.abs(w).sum() for w in weights)
    assert reg().item() == pytest.approx(expected, rel=1e-6)


def test_include_exclude_and_per_module_lambda():
    net = _Net()
    reg = L1Regularizer(net, include=["*.bias", net.conv], exclude=[net.norm, "conv.bias"])
    assert [name for name, _ in reg.named_parameters()] == ["conv.weight", "head.bias"]
    reg = L1Regularizer(net, {"*": 0.1, net.head: 0.0, "embed.*": 1.0})
    expected = 0.1 * net.conv.weight.abs().sum() + 1.0 * net.embed.weight.abs().sum()
    assert reg().item() == pytest.approx(expected.item(), rel=1e-6)
    reg.lambda_reg = 0.5  # a schedule sets it between steps
    expected = 0.5 * sum(p.abs().sum() for p in reg.parameters())
    assert reg().item() == pytest.approx(expected.item(), rel=1e-6)
    assert reg.lambda_reg == 0.5


@pytest.mark.parametrize("groups", ["input", "output"])
def test_group_value_agrees_with_numpy_group_l1(groups, device):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 4, 5)).to(device)
    with torch.no_grad():
        model[2].weight[:, 3] = 0  # a zero input group
        model[2].weight[1] = 0  # a zero output group
    reg = L1Regularizer(model, 0.3, groups=groups)
    conv, linear = (p.detach().cpu().numpy() for p in reg.parameters())
    conv_axes, linear_axes = ((0, 2, 3), 0) if groups == "input" else ((1, 2, 3), 1)
    expected = l1reg.GroupL1(0.3, axis=conv_axes).value(conv) + l1reg.GroupL1(
        0.3, axis=linear_axes
    ).value(linear)
    value = reg()
    assert value.item() == pytest.approx(float(expected), rel=1e-5)
    value.backward()
    gradient = model[2].weight.grad.cpu().numpy()  # 0 on the zero groups, not NaN
    expected_gradient = l1reg.GroupL1(0.3, axis=linear_axes).subgradient(linear)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-5, atol=1e-7)
    assert np.isfinite(gradient).all()


def test_penalty_under_autocast_is_float32(device):
    model = _mlp(device)
    reg = L1Regularizer(model, 0.01)
    expected = reg().item()
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    with torch.autocast(device.type, dtype=dtype):
        loss = model(torch.randn(4, 10, device=device)).float().mean() + reg()
        value = reg()
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert torch.equal(
        model[0].weight.grad != 0, torch.ones_like(model[0].weight, dtype=torch.bool)
    )


def test_bfloat16_model(device):
    model = _mlp(device).to(torch.bfloat16)
    reg = L1Regularizer(model, 0.01)
    value = reg()
    expected = 0.01 * sum(p.double().abs().sum() for p in reg.parameters())
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)
    opt = ProximalL1(torch.optim.Adam(model.parameters(), lr=1e-2), L1Regularizer(model, 0.5))
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(8, 10, device=device, dtype=torch.bfloat16)).float().pow(
            2
        ).mean().backward()
        opt.step()
    report = sparsity(model)
    assert report.zeros > 0
    assert report.l1_norm == pytest.approx(
        sum(p.double().abs().sum().item() for p in reg.parameters())
    )


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
@pytest.mark.parametrize("groups", [None, "input"])
def test_torch_compile(backend, groups, device):
    # aot_eager traces the graph and its autograd as inductor does, without generating code; an
    # inductor compile on the CPU costs 10-30 s of C++ compilation, so it runs on request
    # (L1REG_TEST_INDUCTOR=1, set by benchmarks/gpu_check.sh) or on CUDA.
    if backend == "inductor" and device.type == "cpu" and not os.environ.get("L1REG_TEST_INDUCTOR"):
        pytest.skip("inductor on the CPU: set L1REG_TEST_INDUCTOR=1")
    # Every parametrization compiles the same code object: start from an empty cache, or the
    # eighth one meets dynamo's recompile limit (an error under fullgraph=True).
    torch._dynamo.reset()
    model = _mlp(device)
    reg = L1Regularizer(model, 0.01, groups=groups)
    x = torch.randn(8, 10, device=device)

    def objective():
        return model(x).pow(2).mean() + reg()

    expected = objective()
    expected.backward()
    expected_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    compiled = torch.compile(objective, backend=backend, fullgraph=True)
    value = compiled()
    value.backward()
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    for param, grad in zip(model.parameters(), expected_grads):
        torch.testing.assert_close(param.grad, grad, rtol=1e-5, atol=1e-7)
    # A schedule changes lambda_reg between steps: the compiled function must see the new value.
    before = reg().item()
    reg.lambda_reg = 0.03
    assert compiled().item() - expected.item() == pytest.approx(2 * before, rel=1e-4)


# --------------------------------------------------------------------------- ProximalL1


def _one_step(model, optimizer, x, y):
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


def _batch(device, n=32):
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(n, 10, generator=generator)
    return x.to(device), (x[:, 0] > 0).long().to(device)


@pytest.mark.parametrize("widths", [(16, 8), (400, 400)], ids=["small", "large"])
@pytest.mark.parametrize("groups", [None, "input", "output"])
def test_sgd_prox_equals_numpy_prox(groups, widths, device):
    model, twin = _mlp(device, widths=widths), _mlp(device, widths=widths)
    lr, lam = 0.1, 0.3
    reg = L1Regularizer(model, lam, groups=groups)
    opt = ProximalL1(torch.optim.SGD(model.parameters(), lr=lr), reg)
    plain = torch.optim.SGD(twin.parameters(), lr=lr)
    x, y = _batch(device)
    _one_step(model, opt, x, y)
    _one_step(twin, plain, x, y)
    for (name, got), want in zip(reg.named_parameters(), L1Regularizer(twin).parameters()):
        after_sgd = want.detach().cpu().numpy()
        if groups is None:
            expected = l1reg.L1(lam).prox(after_sgd, step=lr)
        else:
            axis = 0 if groups == "input" else 1
            expected = l1reg.GroupL1(lam, axis=axis).prox(after_sgd, step=lr)
        np.testing.assert_allclose(got.detach().cpu().numpy(), expected, rtol=1e-5, atol=1e-7)
        # Exact zeros where numpy's prox gives them.
        assert np.array_equal(got.detach().cpu().numpy() == 0, expected == 0), name


@pytest.mark.parametrize("widths", [(16, 8), (400, 400)], ids=["small", "large"])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_prox_thresholds_in_adams_metric(amsgrad, widths, device):
    model, twin = _mlp(device, widths=widths), _mlp(device, widths=widths)
    lr, lam, eps = 0.01, 0.2, 1e-8
    opt = ProximalL1(
        torch.optim.Adam(model.parameters(), lr=lr, amsgrad=amsgrad), L1Regularizer(model, lam)
    )
    adam = torch.optim.Adam(twin.parameters(), lr=lr, amsgrad=amsgrad)
    x, y = _batch(device)
    for _ in range(3):
        # Same starting point each step: copy the prox result into the twin.
        with torch.no_grad():
            for p, q in zip(twin.parameters(), model.parameters()):
                p.copy_(q)
        _one_step(model, opt, x, y)
        _one_step(twin, adam, x, y)
    for p, q in zip(L1Regularizer(model).parameters(), L1Regularizer(twin).parameters()):
        state = adam.state[q]
        second = state["max_exp_avg_sq"] if amsgrad else state["exp_avg_sq"]
        v_hat = second / (1 - 0.999 ** state["step"].item())
        threshold = (lr * lam / (v_hat.sqrt() + eps)).cpu().numpy()
        expected = l1reg.prox_l1(q.detach().cpu().numpy(), threshold)
        np.testing.assert_allclose(p.detach().cpu().numpy(), expected, rtol=1e-5, atol=1e-6)
        assert np.array_equal(p.detach().cpu().numpy() == 0, expected == 0)
    assert sparsity(model).zeros > 0


def _metric_group_prox(z, tau, metric):
    """Rows of ``argmin_x ||x - z||_D^2 / 2 + tau ||x||``, in float64 by bisection (a reference)."""
    out = np.zeros_like(z, dtype=np.float64)
    for i, (row, d) in enumerate(zip(z.astype(np.float64), metric.astype(np.float64))):
        if np.linalg.norm(d * row) <= tau:
            continue  # the optimality condition of x = 0
        c = tau / d
        low, high = 0.0, np.linalg.norm(row)
        for _ in range(200):  # s = ||x|| solves sum(row^2 / (s + c)^2) = 1
            s = (low + high) / 2
            low, high = (s, high) if np.sum((row / (s + c)) ** 2) > 1 else (low, s)
        out[i] = row * s / (s + c)
    return out


def test_adam_group_prox_is_the_exact_prox_in_adams_metric(device):
    # After one Adam step from w with gradient g > 0: z = w - lr (to 1e-7), D = g + eps. The input
    # columns below are chosen so that the former rule (the mean of D over a group: zero iff
    # ||z|| mean(D) <= tau) decides the other way on both: column 0 has ||D z|| = 2.00 > tau =
    # 1.27 (kept) but ||z|| mean(D) = 1.05; column 1 has ||D z|| = 1.12 (zeroed), mean rule 3.01.
    lr, lam = 0.1, 9.0  # tau = lr * lam * sqrt(2)
    z = np.array([[0.05, 1.0], [1.0, 0.1]])  # rows: the groups (input columns of the weight)
    metric = np.array([[0.1, 2.0], [1.0, 5.0]])
    layer = nn.Linear(2, 2, bias=False).to(device)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor((z + lr).T, dtype=torch.float32))
    opt = ProximalL1(
        torch.optim.Adam(layer.parameters(), lr=lr, eps=1e-12),
        L1Regularizer(layer, lam, groups="input"),
    )
    layer.weight.grad = torch.tensor(metric.T, dtype=torch.float32, device=device)
    opt.step()
    got = layer.weight.detach().cpu().numpy().T
    expected = _metric_group_prox(z, lr * lam * math.sqrt(2), metric)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.all(got[1] == 0) and np.all(got[0] != 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_sum_abs_is_the_core_blocked_sum(dtype):
    # The compiled one-pass sum stays separate for speed; past 2**24 values it gives the core's
    # blocked sum (l1reg._numerics.sum_abs) to rounding, and both the exact sum to 1e-7.
    from l1reg import _numerics

    rng = np.random.default_rng(4)
    values = rng.standard_normal(17_000_001).astype(
        (dtype == torch.float32 and "float32") or "float64"
    )
    exact = math.fsum(np.abs(values.astype(np.float64)))
    compiled = _cpu.sum_abs([torch.from_numpy(values)])
    core = float(_numerics.sum_abs(np, values))
    assert abs(compiled - exact) / exact < 1e-7
    assert abs(core - exact) / exact < 1e-7
    assert abs(compiled - core) / exact < 2e-7


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_compiled_group_prox_kernel_is_the_core_formula(dtype, axis):
    # The compiled CPU loop stays separate for speed; it must give l1reg.prox.metric_group_factor's
    # values (to rounding: float64 to 1e-12, float32, whose terms it takes in float32, to 1e-5).
    from types import SimpleNamespace

    from l1reg.prox import NEWTON_STEPS, metric_group_factor
    from l1reg.torch._metric import Denominator

    rng = np.random.default_rng(5)
    shape = (7, 9, 5)
    z = rng.standard_normal(shape)
    z[:, :2] *= 0.01  # small groups along every axis: some go to zero
    z[:2] *= 0.01
    z[:, :, :2] *= 0.01
    second = rng.random(shape) ** 4 * 1e-2  # D spread over several decades
    scale, shift, threshold = 1.7, 1e-8, 0.02
    axes = tuple(a for a in range(3) if a != axis)
    size = math.prod(shape[a] for a in axes)
    tau = threshold * math.sqrt(size)
    d = scale * (np.sqrt(second) + shift)
    factor = metric_group_factor(
        np, z, d, tau, lambda v: v.sum(axis=axes, keepdims=True), early_exit=False
    )
    expected = z * factor
    weight = torch.tensor(z, dtype=dtype)
    metric = Denominator(torch.tensor(second, dtype=dtype), True, scale, shift)
    item = SimpleNamespace(param=weight, group_axes=axes, group_size=size)
    assert _cpu.group_proxes_([(item, threshold, metric)], NEWTON_STEPS) == []  # it took it
    got = weight.numpy().astype(np.float64)
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.abs(z).max())
    zero_groups = (expected == 0).all(axis=axes)
    assert np.array_equal((got == 0).all(axis=axes), zero_groups)
    assert 0 < zero_groups.sum() < shape[axis]


@pytest.mark.parametrize("groups", ["input", "output"])
def test_compiled_group_prox_matches_the_eager_one(groups):
    # On the CPU a contiguous float32/float64 weight goes through the compiled loop; the same
    # values in channels-last layout (not contiguous, and Adam's state follows it) take the eager
    # torch code. Both solve the same prox.
    torch.manual_seed(6)
    conv = nn.Conv2d(6, 8, 3)
    twin = copy.deepcopy(conv)
    twin.weight = nn.Parameter(conv.weight.detach().to(memory_format=torch.channels_last))
    assert conv.weight.is_contiguous() and not twin.weight.is_contiguous()
    generator = torch.Generator().manual_seed(7)
    steppers = [
        ProximalL1(
            torch.optim.Adam(model.parameters(), lr=0.05),
            L1Regularizer(model, 0.02, groups=groups, include="weight"),
        )
        for model in (conv, twin)
    ]
    for _ in range(4):
        gradient = torch.randn(conv.weight.shape, generator=generator)
        gradient[:, :2] *= 0.01  # small gradients on some input channels: they go to zero
        gradient[:3] *= 0.01  # and on some output channels
        for model, stepper in zip((conv, twin), steppers):
            model.weight.grad = gradient.clone()
            model.bias.grad = torch.zeros_like(model.bias)
            stepper.step()
    compiled, eager = conv.weight.detach(), twin.weight.detach()
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-7)
    assert torch.equal(compiled == 0, eager == 0)
    axes = (0, 2, 3) if groups == "input" else (1, 2, 3)
    zero_groups = (compiled == 0).all(dim=axes)
    assert 0 < int(zero_groups.sum()) < zero_groups.numel()


@pytest.mark.parametrize(
    "make",
    [torch.optim.Adam, torch.optim.Adamax, torch.optim.RMSprop, torch.optim.Adagrad],
    ids=lambda m: m.__name__,
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_metric_prox_matches_the_eager_one(make, dtype, monkeypatch):
    # The prox in the optimizer's metric of a large CPU weight: one compiled pass (in blocks of
    # 4096 values here, shared by the team where it is found), or torch's kernels chunk by chunk.
    # The same operations in the same dtype: the same zeros, and the same values to a few ulps
    # of the weights' scale (torch's vectorized square root is not always correctly rounded, and
    # just above the threshold the shrunk value keeps an ulp of the unshrunk one).
    monkeypatch.setattr(_threads, "BLOCK", 4096)
    monkeypatch.setattr(_threads, "MIN_PER_THREAD", 4096)
    torch.set_num_threads(2)
    results = []
    for compiled in (True, False):
        if not compiled:
            monkeypatch.setattr(
                _cpu,
                "_compiled_shrink_scaled_",
                lambda rows: [_cpu._shrink_scaled_chunks_(*row) for row in rows],
            )
        torch.manual_seed(12)
        model = nn.Linear(300, 200).to(dtype)  # 60 000 weights: a large tensor
        stepper = ProximalL1(
            make(model.parameters(), lr=0.01), L1Regularizer(model, 0.05), fused=False
        )
        generator = torch.Generator().manual_seed(13)
        for _ in range(3):
            for param in model.parameters():
                param.grad = torch.randn(param.shape, generator=generator, dtype=dtype)
            stepper.step()
        results.append(model.weight.detach().clone())
    torch.set_num_threads(1)
    ulps = 16 * torch.finfo(dtype).eps
    scale = results[1].abs().max().item()
    torch.testing.assert_close(results[0], results[1], rtol=ulps, atol=ulps * scale)
    assert torch.equal(results[0] == 0, results[1] == 0)
    assert 0 < int((results[0] == 0).sum()) < results[0].numel()


@pytest.mark.parametrize("groups", ["input", "output"])
def test_stacked_group_proxes_match_one_by_one(groups, device, monkeypatch):
    # The torch code of the group prox stacks weights of one shape (three 40 x 40 here), at most
    # STACK values at a time; one by one, or two and one, it gives the same values.
    monkeypatch.setattr(_cpu, "group_proxes_", lambda entries, steps: list(range(len(entries))))
    results = []
    for stack in (1 << 25, 3200, 1):
        monkeypatch.setattr(_eager, "STACK", stack)
        torch.manual_seed(10)
        model = nn.Sequential(
            nn.Linear(30, 40), nn.Linear(40, 40), nn.Linear(40, 40), nn.Linear(40, 40)
        ).to(device)
        stepper = ProximalL1(
            torch.optim.Adam(model.parameters(), lr=0.05),
            L1Regularizer(model, 0.02, groups=groups),
        )
        generator = torch.Generator().manual_seed(11)
        for _ in range(3):
            for param in model.parameters():
                param.grad = torch.randn(param.shape, generator=generator).to(device)
                if param.dim() == 2:
                    param.grad[:5] *= 0.01  # small gradients on some outputs
                    param.grad[:, :5] *= 0.01  # and on some inputs: they go to zero
            stepper.step()
        results.append([p.detach().cpu() for p in model.parameters()])
    for other in results[1:]:
        for stacked, alone in zip(results[0], other):
            torch.testing.assert_close(stacked, alone, rtol=1e-5, atol=1e-7)
            assert torch.equal(stacked == 0, alone == 0)
    axis = 0 if groups == "input" else 1
    weights = [w for w in results[0] if w.dim() == 2]
    assert all(0 < int((w == 0).all(dim=axis).sum()) < w.shape[1 - axis] for w in weights)


def test_compiled_group_proxes_on_two_threads_match_one(monkeypatch):
    # One weight a row of a job: on torch's team (2 threads) the same values as in one thread.
    monkeypatch.setattr(_threads, "MIN_PER_THREAD", 1)
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        torch.manual_seed(8)
        model = nn.Sequential(nn.Linear(30, 40), nn.Tanh(), nn.Linear(40, 40), nn.Linear(40, 3))
        stepper = ProximalL1(
            torch.optim.Adam(model.parameters(), lr=0.05),
            L1Regularizer(model, 0.02, groups="input"),
        )
        generator = torch.Generator().manual_seed(9)
        for _ in range(3):
            for param in model.parameters():
                param.grad = torch.randn(param.shape, generator=generator)
                if param.dim() == 2:
                    param.grad[:, :5] *= 0.01  # these inputs go to zero
            stepper.step()
        results.append([p.detach().clone() for p in model.parameters()])
    torch.set_num_threads(1)
    for one, two in zip(*results):
        assert torch.equal(one, two)
    assert any(bool((p == 0).all(dim=0).any()) for p in results[1][::2])  # some inputs removed


@pytest.mark.parametrize("groups", [None, "input"])
def test_relax_holds_the_support_and_stops_shrinking(groups, device):
    # The relaxed lasso: 20 steps of selection, then Adam alone projected onto the support.
    torch.manual_seed(8)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2)).to(device)
    x = torch.randn(64, 6, device=device)
    y = x[:, :2] @ torch.tensor([[1.0, -1.0], [2.0, 0.5]], device=device)
    reg = L1Regularizer(model, 0.05, groups=groups, include="0.weight")
    opt = ProximalL1(torch.optim.Adam(model.parameters(), lr=0.05), reg, relax_after=20)

    def train(stepper, steps):
        for _ in range(steps):
            stepper.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            stepper.step()

    train(opt, 20)
    assert not opt.relaxed
    weight = model[0].weight.detach().clone()
    kept = weight != 0 if groups is None else (weight != 0).any(dim=0, keepdim=True)
    assert 0 < int(kept.sum()) < kept.numel()
    # The reference: a copy stepped by Adam alone from the same state, then masked.
    twin = copy.deepcopy(model)
    adam = torch.optim.Adam(twin.parameters(), lr=0.05)
    adam.load_state_dict(copy.deepcopy(opt.state_dict()))  # (loading shares the tensors)
    train(opt, 5)
    assert opt.relaxed
    for _ in range(5):
        adam.zero_grad()
        nn.functional.mse_loss(twin(x), y).backward()
        adam.step()
        with torch.no_grad():
            twin[0].weight.mul_(kept)
    after = model[0].weight.detach()
    assert torch.equal(after == 0, ~kept.expand_as(after))  # zeros held, nothing newly zeroed
    torch.testing.assert_close(after, twin[0].weight.detach(), rtol=1e-6, atol=1e-7)
    assert "relax_after=20" in repr(opt)
    with pytest.raises(ValueError, match=r"'relax_after' parameter of ProximalL1 .* Got -1"):
        ProximalL1(torch.optim.SGD(model.parameters(), lr=0.1), reg, relax_after=-1)
    with pytest.raises(TypeError, match=r"'relax_after' parameter of ProximalL1 .* Got 2.5"):
        ProximalL1(torch.optim.SGD(model.parameters(), lr=0.1), reg, relax_after=2.5)


def test_plain_metric_after_adam_gives_fewer_zeros(device):
    x, y = _batch(device)
    zeros = {}
    for metric in ("optimizer", "plain"):
        model = _mlp(device)
        opt = ProximalL1(
            torch.optim.Adam(model.parameters(), lr=1e-2), L1Regularizer(model, 0.05), metric=metric
        )
        for _ in range(30):
            _one_step(model, opt, x, y)
        zeros[metric] = sparsity(model).zeros
    assert zeros["optimizer"] > 10 * max(zeros["plain"], 1)


@pytest.mark.parametrize(
    "make, metric",
    [
        (
            lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.5, eps=1e-3),
            lambda s, g, step: (s["sum"].sqrt() + 1e-3, 0.1 / (1 + (step - 1) * 0.5)),
        ),
        (
            lambda p: torch.optim.RMSprop(p, lr=0.01, centered=True, eps=1e-3),
            lambda s, g, step: ((s["square_avg"] - s["grad_avg"] ** 2).sqrt() + 1e-3, 0.01),
        ),
        (
            lambda p: torch.optim.Adamax(p, lr=0.01, eps=1e-3),
            lambda s, g, step: (s["exp_inf"] + 1e-3, 0.01),
        ),
        (
            lambda p: torch.optim.NAdam(p, lr=0.01, eps=1e-3),
            lambda s, g, step: ((s["exp_avg_sq"] / (1 - 0.999**step)).sqrt() + 1e-3, 0.01),
        ),
    ],
    ids=["adagrad", "rmsprop-centered", "adamax", "nadam"],
)
def test_prox_thresholds_in_each_optimizers_metric(make, metric, device):
    # After the optimizer's own step (a twin without the prox), each weight is soft-thresholded
    # at lr * lambda / D, with D the optimizer's denominator and its learning rate (Adagrad's
    # decayed one) at that step.
    lam = 0.05
    model = nn.Linear(40, 30).to(device)
    twin = copy.deepcopy(model)
    opt = ProximalL1(make(model.parameters()), L1Regularizer(model, lam))
    plain = make(twin.parameters())
    generator = torch.Generator().manual_seed(14)
    for step in (1, 2):
        gradients = [
            torch.randn(p.shape, generator=generator).to(device) for p in model.parameters()
        ]
        for params, gradient_list in ((model, gradients), (twin, gradients)):
            for param, gradient in zip(params.parameters(), gradient_list):
                param.grad = gradient.clone()
        with torch.no_grad():
            twin.weight.copy_(model.weight)  # the twin starts from the prox's result
        opt.step()
        plain.step()
        d, lr = metric(plain.state[twin.weight], gradients[0], step)
        z = twin.weight.detach()
        expected = torch.sign(z) * torch.clamp(z.abs() - lr * lam / d, min=0)
        torch.testing.assert_close(model.weight.detach(), expected, rtol=1e-5, atol=1e-6)
        assert torch.equal(model.weight == 0, expected == 0)
    assert int((model.weight == 0).sum()) > 0


@pytest.mark.parametrize(
    "make",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        lambda p: torch.optim.AdamW(p, lr=0.01),
        lambda p: torch.optim.Adagrad(p, lr=0.1),
        lambda p: torch.optim.RMSprop(p, lr=0.01, centered=True),
        lambda p: torch.optim.Adamax(p, lr=0.01),
        lambda p: torch.optim.NAdam(p, lr=0.01),
    ],
    ids=["sgd-momentum", "adamw", "adagrad", "rmsprop", "adamax", "nadam"],
)
def test_any_optimizer_gives_exact_zeros(make, device):
    model = _mlp(device)
    opt = ProximalL1(make(model.parameters()), L1Regularizer(model, 0.05))
    x, y = _batch(device)
    for _ in range(20):
        _one_step(model, opt, x, y)
    assert sparsity(model).zeros > 0
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_scheduler_and_state_dict(device):
    x, y = _batch(device)

    def make():
        model = _mlp(device)
        opt = ProximalL1(torch.optim.Adam(model.parameters(), lr=0.05), L1Regularizer(model, 0.05))
        return model, opt, torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)

    model, opt, scheduler = make()
    for _ in range(3):
        _one_step(model, opt, x, y)
        scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.005)
    saved = copy.deepcopy((model.state_dict(), opt.state_dict(), scheduler.state_dict()))
    for _ in range(2):
        _one_step(model, opt, x, y)
        scheduler.step()

    resumed, opt2, scheduler2 = make()
    resumed.load_state_dict(saved[0])
    opt2.load_state_dict(saved[1])
    scheduler2.load_state_dict(saved[2])
    for _ in range(2):
        _one_step(resumed, opt2, x, y)
        scheduler2.step()
    for p, q in zip(model.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    # The scheduler's rate is the one the prox used: with lr 0.05 the same steps zero more.
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.0005)


def test_zeros_stay_zero_unless_the_gradient_beats_the_threshold(device):
    layer = nn.Linear(4, 1, bias=False).to(device)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 0.0, 1.0, 0.0]]))
    lam, lr = 1.0, 0.1
    opt = ProximalL1(torch.optim.SGD(layer.parameters(), lr=lr), L1Regularizer(layer, lam))
    # Gradient of the data loss: 0.5 on input 0 (below lambda), 3.0 on input 1 (above it).
    for _ in range(5):
        opt.zero_grad()
        layer.weight.grad = torch.tensor([[0.5, -3.0, 0.0, 0.0]], device=device)
        opt.step()
    weight = layer.weight.detach().cpu()
    assert weight[0, 0].item() == 0.0  # |g| = 0.5 < lambda: stays exactly zero
    assert weight[0, 3].item() == 0.0
    assert weight[0, 1].item() == pytest.approx(5 * lr * (3.0 - lam))  # comes back
    assert weight[0, 2].item() == pytest.approx(1.0 - 5 * lr * lam)


# --------------------------------------------------------------------------- reports and prune


def test_sparsity_report_and_selected_features(device):
    model = _mlp(device)
    with torch.no_grad():
        model[0].weight[:, [1, 4]] = 0
        model[0].weight[2] = 0
    report = sparsity(model)
    rows = report.to_dict()["tensors"]
    assert [row["name"] for row in rows] == ["0.weight", "2.weight", "4.weight"]
    assert rows[0]["zeros"] == 2 * 16 + 8
    assert (rows[0]["inputs_kept"], rows[0]["outputs_kept"]) == (8, 15)
    assert report.size == 10 * 16 + 16 * 8 + 8 * 3
    assert "0.weight" in str(report)
    assert selected_features(model) == [0, 2, 3, 5, 6, 7, 8, 9]


def test_prune_gives_the_same_outputs(device):
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Linear(10, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 8), nn.GELU(), nn.Linear(8, 3)
    ).to(device)
    with torch.no_grad():
        model[0].weight[:, [2, 7]] = 0  # two inputs removed
        model[0].weight[[3, 5]] = 0  # two neurons whose constant output folds into the next bias
        model[3].weight[:, [0, 9, 11]] = 0  # three neurons nobody listens to
        model[5].weight[:, 6] = 0
    model.eval()
    result = prune(model, torch.randn(64, 10, device=device))
    pruned = result.module
    x = torch.randn(50, 10, device=device)
    torch.testing.assert_close(pruned(x), model(x), rtol=1e-5, atol=1e-6)
    assert isinstance(pruned[0][0], SelectInputs)  # the first layer selects its inputs
    linears = [m for m in pruned.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(8, 11), (11, 7), (7, 3)]
    assert result.parameters_after == sum(p.numel() for p in pruned.parameters())
    assert result.parameters_after < result.parameters_before
    assert result.speedup is not None and result.speedup > 0
    assert model[0].weight.shape == (16, 10)  # the original is untouched


def test_prune_conv_channels(device):
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3)).to(device)
    with torch.no_grad():
        model[0].weight[[1, 6]] = 0
        model[0].bias[[1, 6]] = -1.0  # ReLU(-1) = 0: a dead channel
        model[2].weight[:, 3] = 0
    result = prune(model)
    x = torch.randn(2, 3, 9, 9, device=device)
    torch.testing.assert_close(result.module(x), model(x), rtol=1e-5, atol=1e-6)
    assert result.module[0].out_channels == 5


class _Residual(nn.Module):
    """A module of one's own: functional activations, a skip, a shared layer, conv then flatten."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(2, 6, 3, padding=1)
        self.conv2 = nn.Conv1d(6, 4, 3, padding=1)
        self.inp = nn.Linear(16, 12)
        self.hidden = nn.Linear(12, 12)
        self.out = nn.Linear(12, 3)
        self.shared = nn.Linear(3, 3)

    def forward(self, x):
        h = nn.functional.relu(self.inp(x[:, 8:]))  # the input reaches inp through a slice
        z = self.conv2(torch.tanh(self.conv1(x[:, :8].reshape(-1, 2, 4)))).flatten(1)
        h = self.hidden(nn.functional.dropout(h, 0.2, self.training)).relu()
        y = self.out(h) + z[:, :3] + h[:, :3]  # hidden's units are read twice: none are dropped
        return self.shared(self.shared(y))


def test_prune_follows_the_data_flow_of_any_module(device):
    torch.manual_seed(3)
    model = _Residual().to(device)
    with torch.no_grad():
        model.conv1.weight[[0, 4]] = 0  # two channels whose incoming weights are zero ...
        model.conv1.bias[[0, 4]] = 0.0  # ... and whose constant output is 0: removable
        model.conv2.weight[:, 5] = 0  # one channel nobody listens to
        model.inp.weight[:, [1, 2, 3]] = 0  # a slice feeds inp: its inputs are not the model's
        model.inp.weight[[0, 7]] = 0  # two units with a constant output, folded into the bias
        model.hidden.weight[[4, 5]] = 0  # but hidden's output has two readers: kept
        model.shared.weight[:, 1] = 0  # called twice: left alone
    result = prune(model.train())
    pruned = result.module
    assert isinstance(pruned, _Residual) and pruned.training
    x = torch.randn(20, 24, device=device)
    torch.testing.assert_close(pruned.eval()(x), model.eval()(x), rtol=1e-5, atol=1e-6)
    assert (pruned.conv1.out_channels, pruned.conv2.in_channels) == (3, 3)
    assert (pruned.inp.out_features, pruned.hidden.in_features) == (10, 10)
    assert pruned.inp.in_features == 16  # not fed by the model's input alone
    assert pruned.hidden.out_features == 12 and pruned.out.in_features == 12
    assert pruned.shared.weight.shape == (3, 3)
    assert (
        result.parameters_after
        == result.parameters_before - (3 * 2 * 3 + 3) - 3 * 4 * 3 - (2 * 16 + 2) - 2 * 12
    )
    assert model.conv1.out_channels == 6  # the original is untouched


# ----------------------------------------------------------------------- the textbook experiment


def _textbook_data(n, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=generator)
    scores = torch.stack([x[:, 0] + x[:, 1], x[:, 1] - x[:, 2], x[:, 2] * x[:, 0]], dim=1)
    return x, scores.argmax(dim=1)


def _textbook_run(recipe, steps=3000):
    # The experiment, with 1000 training samples so that it runs in a few seconds.
    x, y = _textbook_data(1000, 1)
    x_test, y_test = _textbook_data(2000, 2)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 3))
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    optimizer = adam
    if recipe == "group":
        # Feature selection: the group penalty on the input columns of the first layer.
        optimizer = ProximalL1(adam, L1Regularizer(model, 0.01, groups="input", include="0.weight"))
    elif recipe == "l1":
        optimizer = ProximalL1(adam, L1Regularizer(model, 0.01))
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        if recipe == "textbook":
            loss = loss + 0.01 * sum(torch.norm(p, p=1) for p in (model[0].weight, model[2].weight))
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    return model, accuracy


@pytest.fixture(scope="module")
def textbook_accuracy():
    model, accuracy = _textbook_run("textbook")
    assert sparsity(model).zeros == 0  # the textbook recipe makes no exact zeros
    return accuracy


def test_textbook_group_penalty_selects_the_three_inputs(textbook_accuracy):
    model, accuracy = _textbook_run("group")
    assert selected_features(model) == [0, 1, 2]  # 7 irrelevant columns exactly zero
    assert accuracy >= textbook_accuracy - 0.01


def test_textbook_plain_penalty_zeroes_most_weights(textbook_accuracy):
    model, accuracy = _textbook_run("l1")
    report = sparsity(model)
    assert report.zeros > report.size / 2
    assert accuracy >= textbook_accuracy - 0.01


# --------------------------------------------------------------------------- errors


def test_errors_at_construction():
    model = _mlp("cpu")
    with pytest.raises(ValueError, match=r"The 'lambda_reg' parameter of L1Regularizer .* Got -1"):
        L1Regularizer(model, -1)
    with pytest.raises(ValueError, match=r"'lambda_reg' parameter of L1Regularizer .* Got nan"):
        L1Regularizer(model, math.nan)
    with pytest.raises(TypeError, match=r"'lambda_reg' parameter of L1Regularizer"):
        L1Regularizer(model, "0.1")
    with pytest.raises(ValueError, match=r"'lambda_reg' .* mapping with a key for every"):
        L1Regularizer(model, {"0.*": 0.1})
    with pytest.raises(ValueError, match=r"The 'module' parameter of L1Regularizer .* BatchNorm"):
        L1Regularizer(nn.BatchNorm1d(3))
    with pytest.raises(ValueError, match=r"The 'include' parameter of L1Regularizer .* Got 'nope"):
        L1Regularizer(model, include="nope*")
    with pytest.raises(ValueError, match=r"'groups' parameter .* 1-d parameter '0.bias'"):
        L1Regularizer(model, groups="input", include=model[0])
    with pytest.raises(ValueError, match=r"'groups' parameter of L1Regularizer .* Got 'rows'"):
        L1Regularizer(model, groups="rows")
    with pytest.raises(TypeError, match=r"'module' parameter of L1Regularizer must be a torch.nn"):
        L1Regularizer([p for p in model.parameters()])
    reg = L1Regularizer(model)
    with pytest.raises(ValueError, match=r"'lambda_reg' parameter of L1Regularizer .* Got -0.5"):
        reg.lambda_reg = -0.5
    assert reg.lambda_reg == 0.01
    only_head = torch.optim.SGD(model[4].parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"'regularizer' parameter of ProximalL1 .*'0.weight'"):
        ProximalL1(only_head, reg)
    with pytest.raises(TypeError, match=r"'optimizer' parameter of ProximalL1"):
        ProximalL1(model.parameters(), reg)
    with pytest.raises(TypeError, match=r"'regularizer' parameter of ProximalL1"):
        ProximalL1(torch.optim.SGD(model.parameters(), lr=0.1), 0.01)
    with pytest.raises(ValueError, match=r"'metric' parameter of ProximalL1 .* Got 'adam'"):
        ProximalL1(torch.optim.SGD(model.parameters(), lr=0.1), reg, metric="adam")
    with pytest.raises(TypeError, match=r"'module' parameter of prune .* Got 'model'"):
        prune("model")
    with pytest.raises(ValueError, match=r"'module' parameter of prune .* called once"):
        prune(nn.Linear(2, 2))  # traced as the function it calls: no layer to prune

    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(2, 2)

        def forward(self, x):
            return self.layer(x) if x.sum() > 0 else x

    with pytest.raises(TypeError, match=r"'module' parameter of prune .* torch.fx can trace"):
        prune(DataDependent())


# issue 11: defects found in review


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
@pytest.mark.parametrize("fused", [None, False])
def test_frozen_parameters_are_left_alone(optimizer, fused):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    model[0].weight.requires_grad_(False)
    frozen = model[0].weight.detach().clone()
    trained = model[2].weight.detach().clone()
    opt = getattr(torch.optim, optimizer)(model.parameters(), lr=0.1)
    prox = ProximalL1(opt, L1Regularizer(model, lambda_reg=0.1), fused=fused)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    for _ in range(5):
        prox.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        prox.step()
    assert torch.equal(model[0].weight, frozen)  # was: 32 of 32 entries shrunk
    assert not torch.equal(model[2].weight, trained)


def test_prune_with_a_bad_example_input_keeps_the_training_mode():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        model[0].weight[:, 0] = 0
    model.train()
    # refused before any pruning, by name, with torch's reason
    with pytest.raises(ValueError, match=r"'example_input' parameter of prune.*shapes cannot"):
        prune(model, torch.randn(2, 7))  # wrong number of inputs
    assert model.training and all(m.training for m in model.modules())


@pytest.mark.parametrize("bad", ["abc", 3, [torch.ones(2), "x"]])
def test_l1_norm_of_a_wrong_type_names_the_parameter(bad):
    with pytest.raises(TypeError, match=r"The 'tensors' parameter of l1_norm must be a tensor"):
        l1reg.torch.l1_norm(bad)
