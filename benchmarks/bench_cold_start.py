"""Question: does a new Python process fit its first Lasso in under 1 s (numba cache warm)?

Each measurement is a fresh interpreter that imports the library, builds the small problem
(dense 500x5000, Toeplitz 0.5, 20 true features; alpha_max/10) and fits one Lasso, timed from
interpreter start to the end of the fit; the data are loaded from a .npy file. A first untimed
run fills each library's compilation cache (l1reg and skglm use numba with cache=True; celer
and scikit-learn are compiled ahead of time). Also timed: the first fit alone and a second one in
the same process (what the first pays for loading compiled code), and, as the floor of any
estimator on scikit-learn's base classes, a process that only imports them. Medians over repeats;
ratio = peer / l1reg.

    python benchmarks/bench_cold_start.py [--quick] [--repeats N]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from _l1bench import alpha_max, lasso_problems, machine, parse_args, versions

# (import, fit): the fit statement runs twice
FIT = {
    "l1reg": ("import l1reg.linear_model as m", "m.Lasso(alpha=ALPHA).fit(X, y)"),
    "scikit-learn": ("import sklearn.linear_model as m", "m.Lasso(alpha=ALPHA).fit(X, y)"),
    "skglm": ("import skglm as m", "m.Lasso(alpha=ALPHA).fit(X, y)"),
    "celer": ("import celer as m", "m.Lasso(alpha=ALPHA).fit(X, y)"),
    "`import sklearn.base` (no fit)": ("import sklearn.base", "pass"),
}

SCRIPT = """
import time
start = time.perf_counter()
import numpy as np
X = np.load({x!r}); y = np.load({y!r})
loaded = time.perf_counter()
{imports}
imported = time.perf_counter()
{fit}
fitted = time.perf_counter()
{fit}
again = time.perf_counter()
print(fitted - start - (loaded - start), fitted - imported, again - fitted, flush=True)
"""


def run(code: str) -> tuple[float, ...]:
    """Seconds: process start to exit less the second fit; import + first fit; first fit;
    second fit (the last three measured inside the process)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    total = time.perf_counter() - start
    inside, first, second = map(float, out.stdout.strip().splitlines()[-1].split())
    return total - second, inside, first, second  # (the second fit is not part of the start)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    problem = lasso_problems(quick=True)[0]
    alpha = alpha_max(problem) / 10
    print(f"# cold process, {time.strftime('%Y-%m-%d')}, {machine()}; {versions()}")
    print(
        "| solver | process start to fitted, median (s) | of which import + fit (s) | "
        "first fit (s) | second fit (s) | peer / l1reg |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        x_path, y_path = os.path.join(tmp, "X.npy"), os.path.join(tmp, "y.npy")
        np.save(x_path, problem.X)
        np.save(y_path, problem.y)
        results = {}
        for name, (imports, fit) in FIT.items():
            code = SCRIPT.format(
                x=x_path, y=y_path, imports=imports, fit=fit.replace("ALPHA", repr(alpha))
            )
            run(code)  # fills the compilation caches
            runs = [run(code) for _ in range(args.repeats)]
            results[name] = [statistics.median(values) for values in zip(*runs, strict=True)]
        ours = results["l1reg"][0]
        for name, (total, inside, first, second) in results.items():
            ratio = "" if name == "l1reg" else f"{total / ours:.2f}"
            print(
                f"| {name} | {total:.3f} | {inside:.3f} | {first:.3f} | {second:.3f} | {ratio} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
