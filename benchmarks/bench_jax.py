"""l1reg.jax against the textbook JAX recipe: exact zeros, inputs removed, accuracy, time per epoch.

The textbook recipe adds ``lambda * sum(|W1|)`` to the loss and steps with ``optax.adam(1e-3)``. The
model and data are those of ``bench_keras.py``: ``Dense(64, relu) - Dense(3)`` on 100 000 samples of
which 3 of the 10 inputs decide the class, lambda 0.01 on the first kernel, batch 32. Every variant
runs in the same process; each epoch is one jitted ``lax.scan`` over its batches, and the first
epoch (compilation) is left out of the medians.

    python benchmarks/bench_jax.py             # the figures of BENCHMARKS.md
    python benchmarks/bench_jax.py --quick     # a smoke run
    python benchmarks/bench_jax.py --relax-study --seed 0
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import l1reg
import l1reg.jax

LAMBDA = 0.01


def make_data(n_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """10 standard normal inputs; the class (of 3) is decided by inputs 0, 1 and 2 only."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_samples, 10)).astype("float32")
    scores = np.stack([x[:, 0] + x[:, 1], x[:, 1] - x[:, 2], x[:, 2] - x[:, 0]], axis=1)
    return x, np.argmax(scores, axis=1).astype("int32")


def init_params(key: jax.Array) -> dict[str, jax.Array]:
    """Glorot-uniform kernels and zero biases, as Keras's Dense."""
    k1, k2 = jax.random.split(key)
    init = jax.nn.initializers.glorot_uniform()
    return {
        "w1": init(k1, (10, 64)),
        "b1": jnp.zeros(64),
        "w2": init(k2, (64, 3)),
        "b2": jnp.zeros(3),
    }


def logits(params, x):
    return jax.nn.relu(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


def data_loss(params, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits(params, x), y).mean()


def textbook_loss(params, x, y):
    return data_loss(params, x, y) + l1reg.l1_regularization(params["w1"], LAMBDA)


ONLY_W1 = {"w1": True, "b1": False, "w2": False, "b2": False}
# name -> (loss, optimizer)
VARIANTS = {
    "no penalty, optax.adam": (data_loss, lambda: optax.adam(1e-3)),
    "textbook: L1 in the loss, optax.adam": (textbook_loss, lambda: optax.adam(1e-3)),
    "chain(adam, l1reg.jax.prox_l1)": (
        data_loss,
        lambda: optax.chain(optax.adam(1e-3), l1reg.jax.prox_l1(LAMBDA, 1e-3, mask=ONLY_W1)),
    ),
    "l1reg.jax.adam_l1": (data_loss, lambda: l1reg.jax.adam_l1(1e-3, LAMBDA, mask=ONLY_W1)),
    "chain(adam, l1reg.jax.prox_group_l1(axis=1))": (
        data_loss,
        lambda: optax.chain(
            optax.adam(1e-3), l1reg.jax.prox_group_l1(LAMBDA, 1e-3, axis=1, mask=ONLY_W1)
        ),
    ),
    "l1reg.jax.adam_l1(axis=1)": (
        data_loss,
        lambda: l1reg.jax.adam_l1(1e-3, LAMBDA, axis=1, mask=ONLY_W1),
    ),
    "  same, lambda 0.02": (
        data_loss,
        lambda: l1reg.jax.adam_l1(1e-3, 0.02, axis=1, mask=ONLY_W1),
    ),
    "  same, lambda 0.01, L2(1e-3) on w2 in the loss": (
        lambda params, x, y: data_loss(params, x, y) + 1e-3 * jnp.sum(params["w2"] ** 2),
        lambda: l1reg.jax.adam_l1(1e-3, LAMBDA, axis=1, mask=ONLY_W1),
    ),
    "  same, lambda 0.02, L2(1e-3) on w2 in the loss": (
        lambda params, x, y: data_loss(params, x, y) + 1e-3 * jnp.sum(params["w2"] ** 2),
        lambda: l1reg.jax.adam_l1(1e-3, 0.02, axis=1, mask=ONLY_W1),
    ),
}


def group_lasso(lam: float, second: float | None, relax_after: int | None):
    """adam_l1(axis=1) on w1, and adam_l1 (L1) on w2 when ``second`` is given; plain Adam else."""
    if second is None:
        return l1reg.jax.adam_l1(1e-3, lam, axis=1, mask=ONLY_W1, relax_after=relax_after)
    return optax.multi_transform(
        {
            "group": l1reg.jax.adam_l1(1e-3, lam, axis=1, relax_after=relax_after),
            "l1": l1reg.jax.adam_l1(1e-3, second, relax_after=relax_after),
            "plain": optax.adam(1e-3),
        },
        {"w1": "group", "w2": "l1", "b1": "plain", "b2": "plain"},
    )


def relax_variants(steps_per_epoch: int) -> dict:
    """The relaxed lasso, the grid of ``bench_keras.py --relax-study``: adam_l1(axis=1) selects
    for 2 or 3 of the 4 epochs, then refits the selected inputs without shrinkage."""
    variants = {
        "textbook: L1 in the loss, optax.adam": VARIANTS["textbook: L1 in the loss, optax.adam"]
    }
    for lam in (0.01, 0.02):
        for second in (None, 0.01):
            name = f"adam_l1(axis=1, {lam})" + ("" if second is None else f" + L1({second}) w2")
            for epochs in (None, 2, 3):
                relax_after = None if epochs is None else epochs * steps_per_epoch
                label = name + ("" if epochs is None else f", relax after {epochs} ep.")
                variants[label] = (
                    data_loss,
                    lambda lam=lam, second=second, r=relax_after: group_lasso(lam, second, r),
                )
    return variants


def make_epoch(loss, optimizer):
    @jax.jit
    def epoch(params, state, xb, yb):
        def step(carry, batch):
            params, state = carry
            grads = jax.grad(loss)(params, *batch)
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        (params, state), _ = jax.lax.scan(step, (params, state), (xb, yb))
        return params, state

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 000 samples, 2 epochs")
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--relax-study",
        action="store_true",
        help="the relaxed lasso: adam_l1(axis=1, relax_after=2 or 3 epochs of steps)",
    )
    args = parser.parse_args()
    if args.quick:
        args.samples, args.epochs = 10_000, 2

    x, y = make_data(args.samples, seed=args.seed)
    n_train = int(0.8 * args.samples) // 32 * 32
    x_test, y_test = jnp.asarray(x[n_train:]), jnp.asarray(y[n_train:])
    rng = np.random.default_rng(args.seed)
    variants = relax_variants(n_train // 32) if args.relax_study else VARIANTS
    runs = {}
    for name, (loss, optimizer) in variants.items():
        optimizer = optimizer()
        params = init_params(jax.random.key(args.seed))
        runs[name] = [make_epoch(loss, optimizer), params, optimizer.init(params), []]
    # One epoch of each variant in turn, on the same shuffled batches.
    for _ in range(args.epochs):
        order = rng.permutation(n_train)
        xb = jnp.asarray(x[order].reshape(-1, 32, 10))
        yb = jnp.asarray(y[order].reshape(-1, 32))
        for run in runs.values():
            start = time.perf_counter()
            run[1], run[2] = jax.block_until_ready(run[0](run[1], run[2], xb, yb))
            run[3].append(time.perf_counter() - start)

    print(
        f"JAX {jax.__version__}, optax {optax.__version__}, {jax.devices()[0].platform}, Python "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{args.samples:,} samples (80 % train), {args.epochs} epochs, batch 32, Adam(1e-3)"
    )
    print(f"command: python {' '.join(sys.argv)}")
    steady = slice(1, None) if args.epochs > 1 else slice(None)
    baseline = statistics.median(runs["textbook: L1 in the loss, optax.adam"][3][steady])
    width = max(48, *(len(name) for name in runs))
    header = (
        f"{'variant':{width}} {'zeros (kernel 1)':>16} {'inputs kept':>11} {'test acc':>8} "
        f"{'s/epoch':>8} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, (_, params, _, times) in runs.items():
        kernel = np.asarray(params["w1"])
        zeros = int(np.sum(kernel == 0))
        inputs_kept = int(np.sum(np.any(kernel != 0, axis=1)))
        accuracy = float(jnp.mean(jnp.argmax(logits(params, x_test), axis=1) == y_test))
        median = statistics.median(times[steady])
        print(
            f"{name:{width}} {f'{zeros} / {kernel.size}':>16} {f'{inputs_kept} / 10':>11} "
            f"{accuracy:8.4f} {median:8.3f} {median / baseline:6.3f}"
        )


if __name__ == "__main__":
    main()
