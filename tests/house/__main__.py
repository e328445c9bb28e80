"""Print how many public parameters the house rules test covers and how many bad inputs it tries.

Run from the repository root: ``PYTHONPATH=tests python -m house``.
"""

import test_house_rules as rules

parameters = rules.PARAMETERS
tried = sum(
    len(rules._bad_values(rules._constraints(t)[n], rules.BY_TARGET[t].valid()[n]))
    for t, n in parameters
)
targets = sorted({t for t, _ in parameters})
print(f"{len(parameters)} parameters of {len(targets)} public callables, {tried} bad inputs tried")
print(f"{len(rules.PENDING)} public callables still pending (tests/house/cases.py PENDING)")
