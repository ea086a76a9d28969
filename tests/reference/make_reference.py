#!/usr/bin/env python3
"""Reference values for gateprobe's statistics, computed with SciPy.

    pip install scipy statsmodels && python3 tests/reference/make_reference.py

writes tests/reference/stats.json, which tests/stats/stats.rs compares against
(1e-6 relative). Re-run only when adding cases; commit both files.
"""
import json
import pathlib

import numpy as np
import scipy
import statsmodels
from scipy import stats

out = {
    "scipy_version": scipy.__version__, "statsmodels_version": statsmodels.__version__,
    "normal_quantile": [], "dispersion": [], "line_fit": [], "mixture_cs": [], "normal_mixture": [],
    "chi2_critical": [], "gs_binomial": [], "gs_normal": [], "clopper_pearson": [], "t_bound": [],
    "fixed_size": [],
}

# Is the canary's share the same on every connection (or in every second)?
# Pearson's χ² for homogeneity of a 2×k table, as chi2_contingency computes it.
for groups in [
    [(10, 100), (11, 100), (9, 100), (10, 100)],
    [(100, 100), (0, 100), (0, 90), (5, 60), (0, 120)],
    [(45, 500), (52, 480), (61, 510), (49, 505), (40, 470), (58, 520)],
    [(3, 20), (2, 25), (4, 18)],
]:
    table = [[h for h, n in groups], [n - h for h, n in groups]]
    statistic, p, df, _ = stats.chi2_contingency(table, correction=False)
    out["dispersion"].append({"groups": groups, "statistic": statistic, "p": p, "df": int(df)})

# The χ² a wholly sticky split must reach before a canary run may stop on a
# split decision (the dependence test's threshold, p = 1e-6).
for df in (1, 2, 11, 31, 63, 500):
    out["chi2_critical"].append({"df": df, "p": 1e-6, "statistic": stats.chi2.isf(1e-6, df)})

for probability in (0.5, 0.9, 0.95, 0.975, 0.99, 0.995):
    out["normal_quantile"].append({"probability": probability, "z": stats.norm.ppf(probability)})

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

# The canary's confidence sequences. A beta-binomial mixture likelihood
# ratio (Robbins 1970; Howard et al. 2021 §3.4) with a flat part and point
# masses at 0 and 1, computed with SciPy's betaln and logsumexp; its
# interval {p : ln M(p) < ln(1/α)} found with brentq around the minimum.
from scipy.optimize import brentq, minimize_scalar
from scipy.special import betaln, logsumexp


def mixture(center, scale, w0, w1, wf):
    center = min(max(center, 1e-6), 1 - 1e-6)
    m = max(8.0 * center * (1 - center) / scale ** 2, 2.0)
    return m * center, m * (1 - center), w0, w1, wf


def log_m(s, n, p, mix):
    a, b, w0, w1, wf = mix
    f = n - s
    against = -s * np.log(p) - f * np.log1p(-p)
    terms = [np.log(1 - w0 - w1 - wf) + betaln(a + s, b + f) - betaln(a, b) + against]
    if wf > 0:
        terms.append(np.log(wf) + betaln(1 + s, 1 + f) - betaln(1, 1) + against)
    if w0 > 0 and s == 0:
        terms.append(np.log(w0) - n * np.log1p(-p))
    if w1 > 0 and f == 0:
        terms.append(np.log(w1) - n * np.log(p))
    return float(logsumexp(terms))


for s_hits, n, center, scale, w0, w1, wf, alpha in [
    (100, 1000, 0.10, 0.02, 0.4, 0.1, 0.1, 0.01), (0, 67, 0.10, 0.02, 0.4, 0.1, 0.1, 0.01),
    (40, 40, 0.10, 0.02, 0.4, 0.1, 0.1, 0.01), (130, 1000, 0.10, 0.02, 0.4, 0.1, 0.1, 0.01),
    (2500, 5000, 0.5, 0.1, 0.4, 0.1, 0.1, 0.001), (70, 7000, 0.01, 0.005, 0.4, 0.1, 0.1, 0.01),
    (3, 2000, 0.01, 0.01, 0.3, 0.0, 0.1, 0.005), (0, 500, 0.0025, 0.01, 0.3, 0.0, 0.1, 0.005),
    (995, 1000, 0.995, 0.01, 0.4, 0.1, 0.1, 0.01),
]:
    mix = mixture(center, scale, w0, w1, wf)
    threshold = np.log(1 / alpha)
    points = [0.005, 0.05, 0.08, 0.1, 0.12, 0.3, 0.5, 0.9, 0.99]
    best = minimize_scalar(lambda p: log_m(s_hits, n, p, mix), bounds=(1e-12, 1 - 1e-12),
                           method="bounded", options={"xatol": 1e-14})
    low = 0.0 if log_m(s_hits, n, 1e-12, mix) < threshold else brentq(
        lambda p: log_m(s_hits, n, p, mix) - threshold, 1e-12, best.x, xtol=1e-15)
    high = 1.0 if log_m(s_hits, n, 1 - 1e-12, mix) < threshold else brentq(
        lambda p: log_m(s_hits, n, p, mix) - threshold, best.x, 1 - 1e-12, xtol=1e-15)
    out["mixture_cs"].append({
        "hits": s_hits, "trials": n, "center": center, "scale": scale, "w_zero": w0, "w_one": w1,
        "w_flat": wf, "alpha": alpha, "points": points,
        "log_ratio": [log_m(s_hits, n, p, mix) for p in points], "interval": [low, high],
    })

# The Gaussian-mixture boundary in Howard et al. (2021)'s own form,
# u(v) = sqrt((v + ρ) ln((v + ρ)/(ρ α²))) with v = tσ², divided by t — an
# independent algebraic form of the radius gateprobe computes.
for t, sigma, alpha, t_star in [(10, 0.2, 0.01, 10), (50, 1.5, 0.01, 30), (1000, 0.05, 0.005, 400),
                                (3, 1.0, 0.05, 100)]:
    l = -2 * np.log(alpha)
    rho2 = (l + np.log(l + 1)) / t_star
    howard_rho = sigma ** 2 / rho2
    v = t * sigma ** 2
    radius = np.sqrt((v + howard_rho) * np.log((v + howard_rho) / (howard_rho * alpha ** 2))) / t
    out["normal_mixture"].append({"t": t, "sigma": sigma, "alpha": alpha, "t_star": t_star,
                                  "radius": float(radius)})

# Group-sequential designs (src/stats/sequential.rs), computed here
# independently: exact binomial crossing probabilities by numpy convolution
# of SciPy's binomial pmf, and normal ones with SciPy's multivariate normal.
def hsd(alpha, t, gamma=-4.0):
    t = min(max(t, 0.0), 1.0)
    return alpha if t >= 1.0 else alpha * (1 - np.exp(-gamma * t)) / (1 - np.exp(-gamma))


def binomial_boundary(looks, p, alpha, side):
    """Exact one-sided bounds: the most lenient count at each look whose
    crossing probability, with what earlier looks spent, stays within the
    spending (X >= a rejects for 'upper', X <= c for 'lower')."""
    mass, spent, previous, bounds = np.array([1.0]), 0.0, 0, []
    for n in looks:
        mass = np.convolve(mass, stats.binom.pmf(np.arange(n - previous + 1), n - previous, p))
        previous = n
        allowed = hsd(alpha, n / looks[-1]) - spent
        if side == "upper":
            tail = np.cumsum(mass[::-1])[::-1]
            ok = [k for k in range(len(mass)) if tail[k] <= allowed + 1e-300]
            a = ok[0] if ok else len(mass)
            spent += tail[a] if a < len(mass) else 0.0
            mass[a:] = 0.0
            bounds.append(int(a) if a <= n else None)
        else:
            head = np.cumsum(mass)
            ok = [k for k in range(len(mass)) if head[k] <= allowed + 1e-300]
            c = ok[-1] if ok else -1
            if c >= 0:
                spent += head[c]
                mass[: c + 1] = 0.0
            bounds.append(int(c) if c >= 0 else None)
    return bounds, spent


def crossing(looks, p, bounds, side):
    mass, previous, total = np.array([1.0]), 0, 0.0
    for n, b in zip(looks, bounds):
        mass = np.convolve(mass, stats.binom.pmf(np.arange(n - previous + 1), n - previous, p))
        previous = n
        if b is None:
            continue
        if side == "upper":
            total += mass[b:].sum(); mass[b:] = 0.0
        else:
            total += mass[: b + 1].sum(); mass[: b + 1] = 0.0
    return total


for looks, p, alpha, side, truths in [
    ([32, 40, 50, 63, 79, 99, 124, 155, 194, 243, 304, 380, 475, 594, 743, 929, 1162, 1453, 1817, 2272, 2840, 3000],
     0.08, 0.01, "upper", [0.08, 0.09, 0.1]),
    ([32, 40, 50, 63, 79, 99, 124, 155, 194, 243, 304, 380, 475, 594, 743, 929, 1162, 1453, 1817, 2272, 2840, 3000],
     0.12, 0.009, "lower", [0.12, 0.11, 0.1]),
    ([100, 250, 500, 1000], 0.5, 0.025, "upper", [0.5, 0.55]),
    ([400], 0.2, 0.01, "lower", [0.2, 0.15]),
]:
    bounds, spent = binomial_boundary(looks, p, alpha, side)
    out["gs_binomial"].append({"looks": looks, "p": p, "alpha": alpha, "side": side, "bounds": bounds,
                               "spent": spent, "truths": truths,
                               "crossing": [crossing(looks, q, bounds, side) for q in truths]})

from scipy.stats import multivariate_normal


def normal_boundary(fractions, alpha):
    """Upper z bounds by HSD(-4) spending: each bound solved so that the
    chance of crossing first there is the spending's increment."""
    bounds = []
    for k, t in enumerate(fractions):
        target = hsd(alpha, t) - (hsd(alpha, fractions[k - 1]) if k else 0.0)
        ts = fractions[: k + 1]
        cov = np.array([[np.sqrt(min(a, b) / max(a, b)) for b in ts] for a in ts])
        if k == 0:
            bounds.append(stats.norm.isf(target)); continue
        below = multivariate_normal(mean=np.zeros(k), cov=cov[:k, :k]).cdf(np.array(bounds))
        joint = multivariate_normal(mean=np.zeros(k + 1), cov=cov)
        # P(Z_1<u_1..Z_{k-1}<u_{k-1}, Z_k >= u) = below - P(all below, Z_k < u)
        f = lambda u: below - joint.cdf(np.append(bounds, u)) - target
        bounds.append(brentq(f, 0.5, 8.0, xtol=1e-10))
    return bounds


for fractions, alpha in [([1 / 3, 2 / 3, 1.0], 0.025), ([0.2, 0.5, 1.0], 0.01), ([1.0], 0.01)]:
    out["gs_normal"].append({"fractions": fractions, "alpha": alpha,
                             "bounds": [float(b) for b in normal_boundary(fractions, alpha)]})

for hits, trials, alpha in [(394, 3859, 0.01), (0, 50, 0.01), (50, 50, 0.01), (7, 1000, 0.025), (2218, 16934, 0.01)]:
    ci = stats.binomtest(hits, trials).proportion_ci(confidence_level=1 - 2 * alpha, method="exact")
    out["clopper_pearson"].append({"hits": hits, "trials": trials, "alpha": alpha,
                                   "interval": [float(ci.low), float(ci.high)]})

for z, batches in [(2.326, 40), (3.5, 10), (1.96, 2), (2.8, 22)]:
    out["t_bound"].append({"z": z, "batches": batches, "t": float(stats.t.isf(stats.norm.sf(z), batches - 1))})

# The fixed-sample test the canary plan compares itself with: the fewest n
# at which one exact look at level α per side passes shares `zone` inside
# both edges and fails shares `zone` outside either with probability power.
def fixed_decides(n, low, high, alpha, power, zone):
    for edge, truth, side in [(low, low + zone, "upper"), (low, low - zone, "lower"),
                              (high, high - zone, "lower"), (high, high + zone, "upper")]:
        if side == "upper":
            a = int(stats.binom.isf(alpha, n, edge)) + 1  # least a with P(X >= a) <= alpha
            while stats.binom.sf(a - 1, n, edge) > alpha:
                a += 1
            while a > 0 and stats.binom.sf(a - 2, n, edge) <= alpha:
                a -= 1
            if stats.binom.sf(a - 1, n, truth) < power:
                return False
        else:
            c = int(stats.binom.ppf(alpha, n, edge))
            while c >= 0 and stats.binom.cdf(c, n, edge) > alpha:
                c -= 1
            while stats.binom.cdf(c + 1, n, edge) <= alpha:
                c += 1
            if c < 0 or stats.binom.cdf(c, n, truth) < power:
                return False
    return True


for share, tolerance, zone in [(0.1, 0.02, 0.01), (0.2, 0.03, 0.0077)]:
    low, high = share - tolerance, share + tolerance
    lo, hi = 100, 200000
    while hi - lo > 1:  # the same bisection as fixed_size
        mid = (lo + hi) // 2
        if fixed_decides(mid, low, high, 0.01, 0.95, zone):
            hi = mid
        else:
            lo = mid
    out["fixed_size"].append({"share": share, "tolerance": tolerance, "zone": zone, "n": hi,
                              "decides_at_n": fixed_decides(hi, low, high, 0.01, 0.95, zone)})

path = pathlib.Path(__file__).with_name("stats.json")
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path} (scipy {scipy.__version__}, statsmodels {statsmodels.__version__})")
