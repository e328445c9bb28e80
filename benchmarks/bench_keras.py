"""l1reg.keras against the textbook Keras recipe: zeros, inputs removed, accuracy, time per epoch.

The textbook model is ``Dense(64, relu, kernel_regularizer=regularizers.l1(0.01))`` then
``Dense(3, softmax)``, trained with Adam (lr 1e-3, batch 32) on 100 000 samples of which 3 of the
10 inputs decide the class. Every variant is trained in the same process, each in one
``model.fit``; a callback measures each epoch in CPU time of the process (robust to the other users
of a shared machine) and in wall time.

    KERAS_BACKEND=torch python benchmarks/bench_keras.py --repeats 2   # README / BENCHMARKS figures
    KERAS_BACKEND=jax python benchmarks/bench_keras.py --quick         # a smoke run
    KERAS_BACKEND=torch python benchmarks/bench_keras.py --compare-metrics
    KERAS_BACKEND=jax python benchmarks/bench_keras.py --group-study --seed 1
    KERAS_BACKEND=torch python benchmarks/bench_keras.py --relax-study --seed 0
    KERAS_BACKEND=torch python benchmarks/bench_keras.py --step-times
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras

import l1reg.keras


def make_data(n_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """10 standard normal inputs; the class (of 3) is decided by inputs 0, 1 and 2 only."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_samples, 10)).astype("float32")
    scores = np.stack([x[:, 0] + x[:, 1], x[:, 1] - x[:, 2], x[:, 2] - x[:, 0]], axis=1)
    return x, np.argmax(scores, axis=1).astype("int32")


# name -> (kernel regularizer of layer 1, of layer 2, ProximalL1 metric or None[, relax_after])
VARIANTS = {
    "no penalty": (lambda: None, lambda: None, None),
    "textbook regularizers.l1(0.01)": (lambda: keras.regularizers.l1(0.01), lambda: None, None),
    "l1reg L1(0.01), in the loss": (lambda: l1reg.keras.L1(0.01), lambda: None, None),
    "l1reg L1(0.01) + ProximalL1": (lambda: l1reg.keras.L1(0.01), lambda: None, "optimizer"),
    "l1reg GroupL1(0.01, axis=1) + ProximalL1": (
        lambda: l1reg.keras.GroupL1(0.01, axis=1),
        lambda: None,
        "optimizer",
    ),
    "  same, and L1(0.01) on kernel 2": (
        lambda: l1reg.keras.GroupL1(0.01, axis=1),
        lambda: l1reg.keras.L1(0.01),
        "optimizer",
    ),
}
METRIC_VARIANTS = {
    "textbook regularizers.l1(0.01)": (lambda: keras.regularizers.l1(0.01), lambda: None, None),
    "L1 + ProximalL1(metric='plain')": (lambda: l1reg.keras.L1(0.01), lambda: None, "plain"),
    "L1 + ProximalL1(metric='optimizer')": (
        lambda: l1reg.keras.L1(0.01),
        lambda: None,
        "optimizer",
    ),
    "GroupL1 + ProximalL1(metric='plain')": (
        lambda: l1reg.keras.GroupL1(0.01, axis=1),
        lambda: None,
        "plain",
    ),
    "GroupL1 + ProximalL1(metric='optimizer')": (
        lambda: l1reg.keras.GroupL1(0.01, axis=1),
        lambda: None,
        "optimizer",
    ),
}

GROUP_VARIANTS = {
    "textbook regularizers.l1(0.01)": (lambda: keras.regularizers.l1(0.01), lambda: None, None),
    "GroupL1(0.01)": (lambda: l1reg.keras.GroupL1(0.01, axis=1), lambda: None, "optimizer"),
    "GroupL1(0.02)": (lambda: l1reg.keras.GroupL1(0.02, axis=1), lambda: None, "optimizer"),
    "GroupL1(0.01), L2(1e-3) on kernel 2": (
        lambda: l1reg.keras.GroupL1(0.01, axis=1),
        lambda: keras.regularizers.L2(1e-3),
        "optimizer",
    ),
    "GroupL1(0.01), L2(3e-3) on kernel 2": (
        lambda: l1reg.keras.GroupL1(0.01, axis=1),
        lambda: keras.regularizers.L2(3e-3),
        "optimizer",
    ),
    "GroupL1(0.02), L2(1e-3) on kernel 2": (
        lambda: l1reg.keras.GroupL1(0.02, axis=1),
        lambda: keras.regularizers.L2(1e-3),
        "optimizer",
    ),
    "GroupL1(0.005), L2(3e-3) on kernel 2": (
        lambda: l1reg.keras.GroupL1(0.005, axis=1),
        lambda: keras.regularizers.L2(3e-3),
        "optimizer",
    ),
    "GroupL1(0.01), L1(0.003) on kernel 2": (
        lambda: l1reg.keras.GroupL1(0.01, axis=1),
        lambda: l1reg.keras.L1(0.003),
        "optimizer",
    ),
    "GroupL1(0.01), L1(0.01) on kernel 2": (
        lambda: l1reg.keras.GroupL1(0.01, axis=1),
        lambda: l1reg.keras.L1(0.01),
        "optimizer",
    ),
}


def _relax_variants() -> dict:
    """The relaxed lasso: GroupL1 selects inputs for 2 or 3 of the 4 epochs, then the support is
    fixed and the rest trains unshrunk; each beside the same penalty without relaxation. The grid
    was fixed before any run: lambda 0.01 or 0.02, with or without L1(0.01) on kernel 2."""
    variants = {
        "textbook regularizers.l1(0.01)": (lambda: keras.regularizers.l1(0.01), lambda: None, None)
    }
    for lam in (0.01, 0.02):
        for second in (None, 0.01):
            name = f"GroupL1({lam})" + ("" if second is None else f" + L1({second}) kernel 2")
            for relax_after in (None, 2, 3):
                variants[name + ("" if relax_after is None else f", relax_after={relax_after}")] = (
                    lambda lam=lam: l1reg.keras.GroupL1(lam, axis=1),
                    (lambda: None) if second is None else (lambda s=second: l1reg.keras.L1(s)),
                    "optimizer",
                    relax_after,
                )
    return variants


RELAX_VARIANTS = _relax_variants()


class EpochTimer(keras.callbacks.Callback):
    """CPU time of the process (all threads) and wall time of each epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.cpu: list[float] = []
        self.wall: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = (time.process_time(), time.perf_counter())

    def on_epoch_end(self, epoch, logs=None):
        self.cpu.append(time.process_time() - self._start[0])
        self.wall.append(time.perf_counter() - self._start[1])


def build(first, second, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(64, activation="relu", kernel_regularizer=first),
            keras.layers.Dense(3, activation="softmax", kernel_regularizer=second),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def step_times(x: np.ndarray, y: np.ndarray, calls: int = 500, rounds: int = 7) -> str:
    """Time of one ProximalL1.step (GroupL1(0.02) + L1(0.01) on kernel 2), selecting and relaxed.

    The steps of a custom loop, alone: the median over ``rounds`` of ``calls`` calls, in CPU
    time of the process, so that other users of the machine count less than in an epoch's time.
    """
    model = build(l1reg.keras.GroupL1(0.02, axis=1), l1reg.keras.L1(0.01), seed=0)
    model.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)  # builds the optimizer
    with l1reg.keras.ProximalL1(model) as prox:
        times = {}
        for mode in ("selecting", "relaxed"):
            if mode == "relaxed":
                prox.relax()
            prox.step()  # builds (and on JAX compiles) the step
            per_call = []
            for _ in range(rounds):
                start = time.process_time()
                for _ in range(calls):
                    prox.step()
                keras.ops.convert_to_numpy(model.layers[0].kernel)  # waits for the device
                per_call.append((time.process_time() - start) / calls)
            times[mode] = statistics.median(per_call)
    return ", ".join(f"{mode} {seconds * 1e6:.0f} us" for mode, seconds in times.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 000 samples, 2 epochs")
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1, help="rounds of all the variants")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: a tiny model on shared cores is fastest on one)",
    )
    parser.add_argument(
        "--compare-metrics",
        action="store_true",
        help="after Adam: the plain threshold lr*l1 against Adam's metric lr*l1/(sqrt(v_hat)+eps)",
    )
    parser.add_argument(
        "--group-study",
        action="store_true",
        help="GroupL1 feature selection: lambda, and an L2 or L1 penalty on kernel 2",
    )
    parser.add_argument(
        "--relax-study",
        action="store_true",
        help="the relaxed lasso: GroupL1 selects, then ProximalL1(relax_after=2 or 3) refits",
    )
    parser.add_argument(
        "--step-times",
        action="store_true",
        help="only the time of one ProximalL1.step, selecting and relaxed (no training)",
    )
    args = parser.parse_args()
    if args.quick:
        args.samples, args.epochs = 10_000, 2
    variants = VARIANTS
    if args.compare_metrics:
        variants = METRIC_VARIANTS
    elif args.group_study:
        variants = GROUP_VARIANTS
    elif args.relax_study:
        variants = RELAX_VARIANTS
    backend = keras.config.backend()
    if backend == "torch":
        import torch

        torch.set_num_threads(args.threads)

    x, y = make_data(args.samples, seed=args.seed)
    n_train = int(0.8 * args.samples)
    x_train, y_train, x_test, y_test = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    if args.step_times:
        print(f"Keras {keras.__version__}, backend {backend}, {os.cpu_count()} CPUs")
        print(f"command: KERAS_BACKEND={backend} python {' '.join(sys.argv)}")
        print(f"ProximalL1.step alone, CPU time per call: {step_times(x_train, y_train)}")
        return

    # Each variant trains in one model.fit, as a user's would. The rounds alternate the order of
    # the variants, so that a slow spell of the shared machine does not always hit the same one.
    # name -> (models, CPU s, wall s per epoch, CPU s per epoch after the switch to relaxed)
    runs = {name: ([], [], [], []) for name in variants}
    for round_ in range(args.repeats):
        names = list(variants) if round_ % 2 == 0 else list(reversed(variants))
        for name in names:
            first, second, metric, *relax = variants[name]
            relax_after = relax[0] if relax else None
            model = build(first(), second(), args.seed)
            timer = EpochTimer()
            callbacks = [timer]
            if metric is not None:
                callbacks.insert(0, l1reg.keras.ProximalL1(metric=metric, relax_after=relax_after))
            model.fit(
                x_train, y_train, batch_size=32, epochs=args.epochs, verbose=0, callbacks=callbacks
            )
            # The first epoch includes tracing and warm-up; the steady state is the others.
            steady = slice(1, None) if args.epochs > 1 else slice(None)
            runs[name][0].append(model)
            runs[name][1].extend(timer.cpu[steady])
            runs[name][2].extend(timer.wall[steady])
            if relax_after is not None:
                # (the epoch of the switch, relax_after, includes JAX's new trace of the step)
                runs[name][3].extend(timer.cpu[relax_after + 1 :])
    steps_per_epoch = -(-n_train // 32)

    print(
        f"Keras {keras.__version__}, backend {backend}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs"
        + (f", torch threads {args.threads}" if backend == "torch" else "")
        + f"; {args.samples:,} samples (80 % train), {args.epochs} epochs of "
        f"{steps_per_epoch} steps, batch 32, Adam(1e-3), {args.repeats} round(s)"
    )
    print(f"command: KERAS_BACKEND={backend} python {' '.join(sys.argv)}")
    cpu = {name: statistics.median(run[1]) for name, run in runs.items()}
    wall = {name: statistics.median(run[2]) for name, run in runs.items()}
    baseline = "textbook regularizers.l1(0.01)"
    width = max(44, *(len(name) for name in runs))
    header = (
        f"{'variant':{width}} {'zeros (kernel 1)':>16} {'inputs kept':>11} {'test acc':>8} "
        f"{'CPU s/epoch':>11} {'ratio':>6} {'wall s/epoch':>12} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, (models, _, _, _) in runs.items():
        model = models[0]
        kernel = keras.ops.convert_to_numpy(model.layers[0].kernel)
        zeros = int(np.sum(kernel == 0))
        inputs_kept = int(np.sum(np.any(kernel != 0, axis=1)))
        _, accuracy = model.evaluate(x_test, y_test, batch_size=1024, verbose=0)
        ratios = [
            f"{times[name] / times[baseline]:.3f}" if baseline in times else ""
            for times in (cpu, wall)
        ]
        print(
            f"{name:{width}} {f'{zeros} / {kernel.size}':>16} {f'{inputs_kept} / 10':>11} "
            f"{accuracy:8.4f} {cpu[name]:11.3f} {ratios[0]:>6} {wall[name]:12.3f} {ratios[1]:>6}"
        )
    print(
        "s/epoch: median over the epochs after the first (of every round); CPU: the process's "
        "CPU time (all threads), steadier than wall time on a shared machine; ratio: over the "
        "textbook recipe's. Zeros, inputs and accuracy: the first round's model."
    )
    relaxed = {name: run[3] for name, run in runs.items() if run[3]}
    if relaxed and baseline in cpu:
        print(
            "CPU s/epoch of the relaxed epochs after the switch's (projection only), median, "
            "and its ratio over the textbook recipe's:"
        )
        for name, times in relaxed.items():
            median = statistics.median(times)
            print(f"  {name:{width}} {median:8.3f} {median / cpu[baseline]:6.3f}")
    if args.relax_study:
        print(f"ProximalL1.step alone, CPU time per call: {step_times(x_train, y_train)}")


if __name__ == "__main__":
    main()
