"""Question: what does ``l1reg fit --stability 100`` cost over the plain CV fit, as a user runs it?

Each run is the whole command in a new process (``python -m l1reg.cli fit DATA --target T
--quiet``: reading the file, the screening, the fit, the report and its files), with and without
``--stability 100`` (100 complementary pairs: 200 half-sample paths), alternating, medians over
repeats; ratio = time with / time without, in the same run. Data: the two demo data sets (written
by ``l1reg.datasets``) and a dense 500 x 5000 regression (10 true features, noise sd 1) written
as CSV. The numba cache is warmed by a first run of each, not timed.

    python benchmarks/bench_cli_stability.py [--repeats N] [--quick]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _l1bench import machine, parse_args


def datasets(folder: Path, quick: bool) -> list[tuple[str, Path, str]]:
    import pandas as pd

    from l1reg.datasets import DATASETS

    found = []
    for name, dataset in DATASETS.items():
        path = folder / f"{name}.csv"
        dataset.load().to_csv(path, index=False)
        found.append((f"{name} (demo)", path, dataset.target))
    rng = np.random.default_rng(0)
    n, p = (200, 1000) if quick else (500, 5000)
    X = rng.standard_normal((n, p))
    y = X[:, :10] @ rng.choice([-2.0, -1.0, 1.0, 2.0], 10) + rng.standard_normal(n)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(p)])
    frame["y"] = y
    path = folder / f"dense{n}x{p}.csv"
    frame.to_csv(path, index=False)
    found.append((f"dense {n}x{p}", path, "y"))
    return found


def run(path: Path, target: str, out: Path, extra: list[str]) -> float:
    command = [sys.executable, "-m", "l1reg.cli", "fit", str(path), "--target", target]
    command += ["--quiet", "--out", str(out), *extra]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    print(f"# l1reg fit --stability 100, {time.strftime('%Y-%m-%d')}, {machine()}")
    print("| data | plain CV fit (s) | with --stability 100 (s) | ratio |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, path, target in datasets(folder, args.quick):
            if args.only not in name:
                continue
            variants = {"plain": [], "stability": ["--stability", "100"]}
            for extra in variants.values():  # warm the numba cache and the file cache
                run(path, target, folder / "out", extra)
            times: dict[str, list[float]] = {key: [] for key in variants}
            for _ in range(args.repeats):
                for key, extra in variants.items():
                    times[key].append(run(path, target, folder / "out", extra))
            plain, stable = (statistics.median(times[key]) for key in variants)
            print(f"| {name} | {plain:.2f} | {stable:.2f} | {stable / plain:.1f} |", flush=True)


if __name__ == "__main__":
    main()
