"""Question: does a new Python process fit its first Lasso in under 1 s (numba cache warm)?

Each measurement is a fresh interpreter that imports the library, builds the small problem
(dense 500x5000, Toeplitz 0.5, 20 true features; alpha_max/10) and fits one Lasso, timed from
interpreter start to the end of the fit; the data are loaded from a .npy file. A first untimed
run fills each library's compilation cache (l1reg and skglm use numba with cache=True; celer
and scikit-learn are compiled ahead of time). Medians over repeats; ratio = peer / l1reg.

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

FIT = {
    "l1reg": "import l1reg.linear_model as m; model = m.Lasso(alpha=ALPHA)",
    "scikit-learn": "import sklearn.linear_model as m; model = m.Lasso(alpha=ALPHA)",
    "skglm": "import skglm as m; model = m.Lasso(alpha=ALPHA)",
    "celer": "import celer as m; model = m.Lasso(alpha=ALPHA)",
}

SCRIPT = """
import time
start = time.perf_counter()
import numpy as np
X = np.load({x!r}); y = np.load({y!r})
loaded = time.perf_counter()
{fit}
model.fit(X, y)
print(time.perf_counter() - start - (loaded - start), flush=True)
"""


def run(code: str) -> float:
    """Seconds from interpreter start to the end of the fit, minus the data loading."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    total = time.perf_counter() - start
    inside = float(out.stdout.strip().splitlines()[-1])
    return total, inside


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    problem = lasso_problems(quick=True)[0]
    alpha = alpha_max(problem) / 10
    print(f"# cold process, {time.strftime('%Y-%m-%d')}, {machine()}; {versions()}")
    print(
        "| solver | process start to fitted, median (s) | of which import + fit (s) | "
        "peer / l1reg |"
    )
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        x_path, y_path = os.path.join(tmp, "X.npy"), os.path.join(tmp, "y.npy")
        np.save(x_path, problem.X)
        np.save(y_path, problem.y)
        results = {}
        for name, fit in FIT.items():
            code = SCRIPT.format(x=x_path, y=y_path, fit=fit.replace("ALPHA", repr(alpha)))
            run(code)  # fills the compilation caches
            totals, insides = zip(*(run(code) for _ in range(args.repeats)), strict=True)
            results[name] = (statistics.median(totals), statistics.median(insides))
        ours = results["l1reg"][0]
        for name, (total, inside) in results.items():
            ratio = "" if name == "l1reg" else f"{total / ours:.2f}"
            print(f"| {name} | {total:.3f} | {inside:.3f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
