"""Question: how far is each solver from the limit, in passes over X?

"Passes over X" is a fit's time divided by the time of one ``X.T @ r`` on the same data: the
number of full gradient evaluations the fit costs. Same problems, alphas and accuracy rule as
bench_single_fit.py (whose run prints the same column); medians over repeats.

    python benchmarks/bench_passes_over_X.py [--quick] [--repeats N] [--only NAME]
"""

from __future__ import annotations

import time

from _l1bench import machine, parse_args, versions
from bench_single_fit import measure


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    print(f"# passes over X, {time.strftime('%Y-%m-%d')}, {machine()}; {versions()}")
    print("| problem | alpha | l1reg | scikit-learn | skglm | celer |")
    print("| --- | --- | --- | --- | --- | --- |")
    group: dict[str, float] = {}
    for row in measure(args):
        group[row["solver"]] = row["passes"]
        if len(group) == 4:
            cells = " | ".join(
                f"{group[name]:.0f}" for name in ("l1reg", "scikit-learn", "skglm", "celer")
            )
            print(f"| {row['problem']} | {row['alpha']} | {cells} |", flush=True)
            group = {}


if __name__ == "__main__":
    main()
