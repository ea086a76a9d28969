#!/usr/bin/env python3
"""Reference values for gateprobe's statistics, computed with SciPy.

    pip install scipy && python3 tests/reference/make_reference.py

writes tests/reference/stats.json, which tests/stats.rs compares against
(1e-6 relative). Re-run only when adding cases; commit both files.
"""
import json
import pathlib

import scipy
from scipy import stats

binomial_cases = [
    (0, 50, 0.10), (3, 44, 0.10), (5, 50, 0.10), (12, 60, 0.10), (100, 1000, 0.10),
    (80, 1000, 0.10), (130, 1000, 0.10), (1, 10, 0.5), (9, 10, 0.5), (455, 4100, 0.10),
    (2000, 20000, 0.10), (1880, 20000, 0.10), (50, 100, 0.45), (0, 5, 0.01), (7, 7, 0.9),
]
out = {"scipy_version": scipy.__version__, "binomial": [], "chi_square": [], "normal_quantile": []}
for k, n, p in binomial_cases:
    test = stats.binomtest(k, n, p)
    row = {
        "successes": k, "trials": n, "p0": p,
        "two_sided": test.pvalue,
        "greater": stats.binomtest(k, n, p, alternative="greater").pvalue,
        "less": stats.binomtest(k, n, p, alternative="less").pvalue,
    }
    for confidence in (0.95, 0.98, 0.99):
        exact = test.proportion_ci(confidence_level=confidence, method="exact")
        wilson = test.proportion_ci(confidence_level=confidence, method="wilson")
        row[f"clopper_pearson_{confidence}"] = [exact.low, exact.high]
        row[f"wilson_{confidence}"] = [wilson.low, wilson.high]
    out["binomial"].append(row)

for observed, shares in [
    ([450, 460, 90], [0.45, 0.45, 0.10]),
    ([400, 500, 100], [0.45, 0.45, 0.10]),
    ([900, 100], [0.9, 0.1]),
    ([30, 30, 30, 10], [0.3, 0.3, 0.3, 0.1]),
]:
    total = sum(observed)
    statistic, pvalue = stats.chisquare(observed, [s * total for s in shares])
    out["chi_square"].append({"observed": observed, "shares": shares, "statistic": statistic, "p": pvalue})

for probability in (0.5, 0.9, 0.95, 0.975, 0.99, 0.995):
    out["normal_quantile"].append({"probability": probability, "z": stats.norm.ppf(probability)})

path = pathlib.Path(__file__).with_name("stats.json")
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path} (scipy {scipy.__version__})")
