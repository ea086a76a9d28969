#!/usr/bin/env python3
"""How the canary's split design was chosen (docs/canary.md, "Choosing the design").

    pip install scipy && python3 tests/reference/compare_designs.py

An independent numpy/SciPy implementation of the exact-binomial
group-sequential repeated TOST with a fail side (src/canary/design.rs),
for several spending functions (Lan-DeMets O'Brien-Fleming, Hwang-Shih-DeCani
gamma -2 and -4, the power family t^2 and t^3) and look grids (geometric from
32 by 1.25, 10 and 20 equal looks). For each: the zone it decides with power
0.95 within the budget, its maximum against a fixed-sample test for that zone
(normal approximation here), and its exact mean sample at p0. Takes minutes.
"""
import numpy as np
from scipy import stats
import math, sys

def looks_geometric(N, first=32, ratio=1.25):
    n = [first]
    while n[-1] * ratio < N:
        n.append(int(math.ceil(n[-1] * ratio)))
    if n[-1] != N:
        n.append(N)
    return n

def looks_linear(N, K):
    return [int(round(N * (k + 1) / K)) for k in range(K)]

def spend(kind, t, alpha, param=None):
    t = min(max(t, 0.0), 1.0)
    if kind == "obf":  # Lan-DeMets OBF, one-sided
        z = stats.norm.isf(alpha)
        return 2 * stats.norm.sf(stats.norm.isf(alpha / 2) / math.sqrt(t)) if t > 0 else 0.0
    if kind == "hsd":
        g = param
        return alpha * (1 - math.exp(-g * t)) / (1 - math.exp(-g))
    if kind == "pow":
        return alpha * t ** param
    raise ValueError

def binom_pmf(m, p, lo, hi):
    k = np.arange(lo, hi + 1)
    return stats.binom.pmf(k, m, p)

def one_sided_bounds(looks, p, alpha, kind, param, upper):
    """upper=True: reject when X >= a_k (designed at p). Returns list of a_k (None = no rejection possible)."""
    # state: offset, mass array
    off, mass = 0, np.array([1.0])
    prev = 0
    spent = 0.0
    bounds = []
    for n in looks:
        m = n - prev
        sd = math.sqrt(max(m * p * (1 - p), 1e-12))
        lo = max(0, int(m * p - 12 * sd) - 1)
        hi = min(m, int(m * p + 12 * sd) + 1)
        inc = binom_pmf(m, p, lo, hi)
        mass = np.convolve(mass, inc)
        off = off + lo
        allowed = spend(kind, n / looks[-1], alpha, param)
        # find boundary
        if upper:
            tail = np.cumsum(mass[::-1])[::-1]  # tail[i] = P(X >= off+i)
            ok = np.nonzero(spent + tail <= allowed)[0]
            if len(ok):
                i = ok[0]
                b = off + i
                spent += tail[i] if i < len(mass) else 0
                mass = mass[:i].copy()
            else:
                b = None
        else:
            head = np.cumsum(mass)  # P(X <= off+i)
            ok = np.nonzero(spent + head <= allowed)[0]
            if len(ok):
                i = ok[-1]
                b = off + i
                spent += head[i]
                mass = mass[i + 1:].copy()
                off = off + i + 1
            else:
                b = None
        bounds.append(b)
        # trim negligible mass
        nz = np.nonzero(mass > 1e-18)[0]
        if len(nz):
            mass = mass[nz[0]: nz[-1] + 1]
            off += nz[0]
        prev = n
    return bounds, spent

def walk(looks, p, rule):
    """rule(k, lo, hi) -> arrays pass_mask, fail_mask over counts lo..hi. Returns P(pass), P(fail), E[n]."""
    off, mass = 0, np.array([1.0])
    prev = 0
    pp = pf = 0.0
    en = 0.0
    for k, n in enumerate(looks):
        m = n - prev
        sd = math.sqrt(max(m * p * (1 - p), 1e-12))
        lo = max(0, int(m * p - 12 * sd) - 1)
        hi = min(m, int(m * p + 12 * sd) + 1)
        mass = np.convolve(mass, binom_pmf(m, p, lo, hi))
        off += lo
        xs = np.arange(off, off + len(mass))
        pm, fm = rule(k, xs)
        sp, sf = mass[pm].sum(), mass[fm].sum()
        pp += sp; pf += sf
        en += (sp + sf) * n
        mass = np.where(pm | fm, 0.0, mass)
        nz = np.nonzero(mass > 1e-18)[0]
        if len(nz):
            mass = mass[nz[0]: nz[-1] + 1]; off += nz[0]
        else:
            mass = np.array([0.0])
        prev = n
    en += mass.sum() * looks[-1]
    return pp, pf, en

class Design:
    def __init__(self, p0, delta, alpha, looks, kind, param, fail_alpha=None):
        self.L, self.H = p0 - delta, p0 + delta
        self.looks = looks
        fa = alpha if fail_alpha is None else fail_alpha
        self.a, _ = one_sided_bounds(looks, self.L, alpha, kind, param, True)   # pass low: X >= a
        self.b, _ = one_sided_bounds(looks, self.H, alpha, kind, param, False)  # pass high: X <= b
        self.c, _ = one_sided_bounds(looks, self.L, fa, kind, param, False)     # fail low: X <= c
        self.d, _ = one_sided_bounds(looks, self.H, fa, kind, param, True)      # fail high: X >= d

    def rule(self, k, xs):
        a, b, c, d = self.a[k], self.b[k], self.c[k], self.d[k]
        big = 1 << 60
        a = big if a is None else a
        b = -1 if b is None else b
        c = -1 if c is None else c
        d = big if d is None else d
        return (xs >= a) & (xs <= b), (xs <= c) | (xs >= d)

    def power(self, p):
        return walk(self.looks, p, self.rule)

def fixed_n(p_edge, x, alpha, power):
    z = stats.norm.isf(alpha) + stats.norm.isf(1 - power)
    # alternatives on both sides of the edge: variance at the alternative
    n = 0
    for alt in (p_edge - x, p_edge + x):
        za, zb = stats.norm.isf(alpha), stats.norm.isf(1 - power)
        nn = (za * math.sqrt(p_edge * (1 - p_edge)) + zb * math.sqrt(alt * (1 - alt))) ** 2 / x ** 2
        n = max(n, nn)
    return n

def zone(design, power=0.95):
    L, H = design.L, design.H
    out = []
    for edge, side, want in [(L, +1, 0), (L, -1, 1), (H, -1, 0), (H, +1, 1)]:
        lo, hi = 0.0, min(0.2, 0.999*(edge if side < 0 else 1-edge))
        if want == 0: hi = (H - L) / 2
        for _ in range(30):
            mid = (lo + hi) / 2
            r = design.power(edge + side * mid)
            if r[want] >= power:
                hi = mid
            else:
                lo = mid
        out.append(hi)
    return max(out), out

if __name__ == "__main__":
    alpha = 0.01
    for (p0, delta, N) in [(0.2, 0.03, 50000), (0.1, 0.02, 50000), (0.05, 0.01, 50000), (0.1, 0.02, 18000), (0.1, 0.02, 6000)]:
        for name, looks, kind, param in [
            ("geo1.25 obf", looks_geometric(N, 32, 1.25), "obf", None),
            ("geo1.25 hsd-2", looks_geometric(N, 32, 1.25), "hsd", -2),
            ("geo1.25 hsd-4", looks_geometric(N, 32, 1.25), "hsd", -4),
            ("geo1.25 pow3", looks_geometric(N, 32, 1.25), "pow", 3),
            ("geo1.25 pow2", looks_geometric(N, 32, 1.25), "pow", 2),
            ("lin10 obf", looks_linear(N, 10), "obf", None),
            ("lin20 obf", looks_linear(N, 20), "obf", None),
        ]:
            d = Design(p0, delta, alpha, looks, kind, param)
            X, sides = zone(d)
            fx = max(fixed_n(d.L, X, alpha, 0.95), fixed_n(d.H, X, alpha, 0.95))
            pp, pf, en = d.power(p0)
            print(f"p0 {p0} d {delta} N {N} {name:14s} looks {len(looks):3d} zone {X*100:.3f}pp fixed {fx:.0f} max/fixed {N/fx:.3f} E[n]@p0 {en:.0f} ({en/fx:.3f}) pass@p0 {pp:.4f}")
            sys.stdout.flush()
