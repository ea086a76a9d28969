#!/usr/bin/env python3
"""Reference values for gateprobe's statistics, computed with SciPy.

    pip install scipy statsmodels && python3 tests/reference/make_reference.py

writes tests/reference/stats.json, which tests/it/stats.rs compares against
(1e-6 relative). Re-run only when adding cases; commit both files.
"""
import json
import pathlib

import numpy as np
import scipy
import statsmodels
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep

binomial_cases = [
    (0, 50, 0.10), (3, 44, 0.10), (5, 50, 0.10), (12, 60, 0.10), (100, 1000, 0.10),
    (80, 1000, 0.10), (130, 1000, 0.10), (1, 10, 0.5), (9, 10, 0.5), (455, 4100, 0.10),
    (2000, 20000, 0.10), (1880, 20000, 0.10), (50, 100, 0.45), (0, 5, 0.01), (7, 7, 0.9),
]
out = {
    "scipy_version": scipy.__version__, "statsmodels_version": statsmodels.__version__,
    "binomial": [], "chi_square": [], "normal_quantile": [],
    "fisher": [], "newcombe": [], "mann_whitney": [], "holm": [], "line_fit": [],
}
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

# Error rates, canary vs baseline: (canary errors, canary n, baseline errors, baseline n).
for a, n1, b, n2 in [
    (10, 200, 0, 1800), (1, 200, 2, 1800), (0, 500, 0, 4500), (25, 500, 5, 4500),
    (3, 100, 1, 100), (50, 1000, 40, 1000), (0, 30, 3, 300),
]:
    _, p = stats.fisher_exact([[a, n1 - a], [b, n2 - b]], alternative="greater")
    out["fisher"].append({"table": [a, n1 - a, b, n2 - b], "p_greater": p})
    for confidence in (0.95, 0.98):
        low, high = confint_proportions_2indep(
            a, n1, b, n2, method="newcomb", compare="diff", alpha=1 - confidence
        )
        out["newcombe"].append({
            "counts": [a, n1, b, n2], "confidence": confidence, "low": low, "high": high,
        })

# Latencies with ties (integers as a histogram stores them below 2048 µs exactly).
rng = np.random.default_rng(4)
for shift, nx, ny in [(0, 300, 2000), (15, 300, 2000), (60, 150, 1350), (-5, 80, 90), (0, 40, 40)]:
    x = np.round(rng.gamma(4.0, 25.0, nx)).astype(int) + shift
    y = np.round(rng.gamma(4.0, 25.0, ny)).astype(int)
    x, y = np.clip(x, 1, 2000), np.clip(y, 1, 2000)
    test = stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic")
    differences = np.sort(np.subtract.outer(x, y).ravel())
    pairs = nx * ny
    k = int(np.floor(pairs / 2 - stats.norm.ppf(0.975) * np.sqrt(nx * ny * (nx + ny + 1) / 12)))
    xs, xc = np.unique(x, return_counts=True)
    ys, yc = np.unique(y, return_counts=True)
    out["mann_whitney"].append({
        "x": [[int(v), int(c)] for v, c in zip(xs, xc)],
        "y": [[int(v), int(c)] for v, c in zip(ys, yc)],
        "u": float(test.statistic), "p_greater": float(test.pvalue),
        "hodges_lehmann": float(np.median(differences)),
        "moses_95": [float(differences[k - 1]), float(differences[pairs - k])],
    })

for p_values in [[0.01, 0.04, 0.03], [0.2, 0.001], [0.5], [0.04, 0.01, 0.03, 0.9]]:
    out["holm"].append({"p": p_values, "adjusted": list(multipletests(p_values, method="holm")[1])})

# Straight-line OLS (the throttle probe's admitted-over-time fit): slope and
# intercept, their 95% intervals, and the 95% interval of the line's mean at x0.
import statsmodels.api as sm
rng = np.random.default_rng(5)
for n, slope, intercept, noise, x0 in [(12, 50.0, 10.0, 0.4, 0.0), (40, 1000.0, 500.0, 3.0, -1.5),
                                      (5, 2.0, -1.0, 0.1, 2.0), (100, 200.0, 100.0, 1.0, 0.3)]:
    x = np.sort(rng.uniform(0.0, 5.0, n))
    y = intercept + slope * x + rng.normal(0.0, noise, n)
    fit = sm.OLS(y, sm.add_constant(x)).fit()
    ci = fit.conf_int(alpha=0.05)
    mean = fit.get_prediction(np.array([[1.0, x0]])).summary_frame(alpha=0.05)
    out["line_fit"].append({
        "x": x.tolist(), "y": y.tolist(), "x0": x0,
        "slope": float(fit.params[1]), "intercept": float(fit.params[0]),
        "slope_95": [float(ci[1][0]), float(ci[1][1])],
        "residual_sd": float(np.sqrt(fit.scale)),
        "mean_at_x0_95": [float(mean["mean_ci_lower"].iloc[0]), float(mean["mean_ci_upper"].iloc[0])],
    })

path = pathlib.Path(__file__).with_name("stats.json")
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path} (scipy {scipy.__version__}, statsmodels {statsmodels.__version__})")
