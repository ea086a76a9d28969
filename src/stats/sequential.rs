//! Group-sequential designs: tests looked at a planned number of times,
//! each look allowed to stop the run, with the error rate spent over the
//! looks by an α-spending function (Lan & DeMets 1983, "Discrete
//! sequential boundaries for clinical trials", Biometrika 70(3);
//! Jennison & Turnbull 2000, *Group Sequential Methods with Applications to
//! Clinical Trials*, ch. 7 and 19).
//!
//! Two kinds of statistic are here, walked by one lattice recursion
//! ([`Lattice`]: the sub-probability of the paths still running, convolved
//! with the next increment and cut at the boundary, look after look):
//! - **counts** ([`binomial_boundary`]): the hits among n Bernoulli trials,
//!   with *exact* binomial increments. The boundary at each look is the
//!   most lenient whole count whose crossing probability, added to what
//!   earlier looks spent, stays within α·f(t): the error at the design
//!   point is at most α whatever look the run stops at, with no normal
//!   approximation (which understates α at small counts: 0.014 for a
//!   nominal 0.01 at a 10% share).
//! - **z statistics** ([`normal_boundary`]): a mean with an estimated
//!   variance, whose score is Brownian motion in the information fraction t
//!   (the canonical joint distribution, Jennison & Turnbull §3.1), walked on
//!   a grid of 1/[`GRID_PER_SD`] of a standard deviation.
//!
//! The spending function is Hwang, Shih & DeCani's (1990, Stat. Med. 9):
//! f(t) = (1 − e^(−γt)) / (1 − e^(−γ)). γ = −4 spends little early (near
//! O'Brien–Fleming's shape: its last look costs 3% more than a fixed test,
//! O'Brien–Fleming's 2%) but enough that a share well inside its band
//! passes within the first tenth or fifth of the plan (mean sample at p0
//! 0.10× the fixed test's at 20% ± 3pp and a budget of 50,000, against
//! O'Brien–Fleming's 0.20× and γ = −2's 0.09× at a 6% maximum cost).
//! Computed exactly for each design by `tests/reference/compare_designs.py`
//! (the table is in docs/canary.md).
//!
//! No Rust crate computes group-sequential boundaries; this is written
//! here and checked against SciPy (`tests/reference/make_reference.py`:
//! exact binomial crossing probabilities by numpy convolution, and normal
//! ones by `scipy.stats.multivariate_normal`).
use statrs::function::gamma::ln_gamma;

/// Hwang–Shih–DeCani γ the canary's designs use.
pub const HSD_GAMMA: f64 = -4.0;

/// Probability mass below which a lattice cell is dropped (the tails of
/// every increment, summed over all looks, stay below 1e-15).
const NEGLIGIBLE: f64 = 1e-20;

/// Grid cells per standard deviation of the whole plan's score.
pub const GRID_PER_SD: f64 = 200.0;

/// An α-spending function: how much of α may be spent by information
/// fraction t ∈ [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spending {
    pub gamma: f64,
}

impl Spending {
    pub const HSD: Spending = Spending { gamma: HSD_GAMMA };

    /// α·f(t): what may have been spent by t (all of α at t ≥ 1).
    pub fn spent(&self, alpha: f64, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        if t >= 1.0 {
            return alpha;
        }
        if self.gamma.abs() < 1e-9 {
            return alpha * t;
        }
        alpha * (-(-self.gamma * t).exp_m1()) / (-(-self.gamma).exp_m1())
    }
}

/// Looks at n = `first`, then each `ratio` times the last (rounded up),
/// and always at `last`: the run may stop at any of them. Geometric, so a
/// share far from its band is seen within tens of responses and the
/// number of looks grows with the logarithm of the plan.
pub fn geometric_looks(first: u64, ratio: f64, last: u64) -> Vec<u64> {
    let mut looks = Vec::new();
    let mut next = first.max(1);
    while next < last {
        looks.push(next);
        next = ((next as f64 * ratio).ceil() as u64).max(next + 1);
    }
    looks.push(last.max(1));
    looks
}

/// Each look's information fraction when the plan ends at the last look.
pub fn fractions(looks: &[u64]) -> Vec<f64> {
    let last = looks.last().copied().unwrap_or(1).max(1) as f64;
    looks.iter().map(|n| *n as f64 / last).collect()
}

/// A sub-probability distribution over consecutive integers (counts, or
/// grid cells): `mass[i]` is the probability of `offset + i`.
#[derive(Debug, Clone)]
pub struct Lattice {
    pub offset: i64,
    pub mass: Vec<f64>,
}

impl Lattice {
    /// All the mass at 0 (before the first observation).
    pub fn origin() -> Self {
        Self {
            offset: 0,
            mass: vec![1.0],
        }
    }

    pub fn total(&self) -> f64 {
        self.mass.iter().sum()
    }

    /// The distribution after adding an independent increment.
    pub fn add(&self, increment: &Lattice) -> Lattice {
        if self.mass.is_empty() || increment.mass.is_empty() {
            return Lattice {
                offset: self.offset,
                mass: Vec::new(),
            };
        }
        let mut mass = vec![0.0; self.mass.len() + increment.mass.len() - 1];
        for (i, &here) in self.mass.iter().enumerate() {
            if here == 0.0 {
                continue;
            }
            for (slot, &step) in mass[i..].iter_mut().zip(&increment.mass) {
                *slot += here * step;
            }
        }
        let mut sum = Lattice {
            offset: self.offset + increment.offset,
            mass,
        };
        sum.trim();
        sum
    }

    /// Drops negligible cells at both ends.
    pub fn trim(&mut self) {
        let Some(first) = self.mass.iter().position(|m| *m > NEGLIGIBLE) else {
            self.mass.clear();
            return;
        };
        let last = self
            .mass
            .iter()
            .rposition(|m| *m > NEGLIGIBLE)
            .unwrap_or(first);
        self.mass.truncate(last + 1);
        self.mass.drain(..first);
        self.offset += first as i64;
    }

    /// The mass at values ≥ `value`.
    pub fn at_least(&self, value: i64) -> f64 {
        let start = (value - self.offset).max(0) as usize;
        self.mass.get(start..).map_or(0.0, |tail| tail.iter().sum())
    }

    /// The mass at values ≤ `value`.
    pub fn at_most(&self, value: i64) -> f64 {
        let end = value - self.offset;
        if end < 0 {
            return 0.0;
        }
        let end = (end as usize + 1).min(self.mass.len());
        self.mass[..end].iter().sum()
    }

    /// Takes out the mass of every value a look stops at: (passed, failed).
    pub fn settle(&mut self, mut stop: impl FnMut(i64) -> Stop) -> (f64, f64) {
        let (mut pass, mut fail) = (0.0, 0.0);
        for (i, mass) in self.mass.iter_mut().enumerate() {
            if *mass == 0.0 {
                continue;
            }
            match stop(self.offset + i as i64) {
                Stop::Pass => pass += *mass,
                Stop::Fail => fail += *mass,
                Stop::Continue => continue,
            }
            *mass = 0.0;
        }
        self.trim();
        (pass, fail)
    }

    /// Takes out (returns) the mass of every value for which `stops` holds.
    pub fn take(&mut self, mut stops: impl FnMut(i64) -> bool) -> f64 {
        let mut taken = 0.0;
        for (i, mass) in self.mass.iter_mut().enumerate() {
            if *mass != 0.0 && stops(self.offset + i as i64) {
                taken += *mass;
                *mass = 0.0;
            }
        }
        self.trim();
        taken
    }
}

/// Binomial(m, p) probabilities, the negligible tails left out.
pub fn binomial_increment(m: u64, p: f64) -> Lattice {
    if m == 0 || p <= 0.0 {
        return Lattice::origin();
    }
    if p >= 1.0 {
        return Lattice {
            offset: m as i64,
            mass: vec![1.0],
        };
    }
    let (n, q) = (m as f64, 1.0 - p);
    let mode = (((n + 1.0) * p).floor() as u64).min(m);
    let ln_pmf = |k: u64| {
        let k = k as f64;
        ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0)
            + k * p.ln()
            + (n - k) * q.ln()
    };
    let at_mode = ln_pmf(mode).exp();
    let mut below = Vec::new();
    let mut value = at_mode;
    let mut k = mode;
    while k > 0 {
        // pmf(k − 1) = pmf(k) · k q / ((m − k + 1) p)
        value *= k as f64 * q / ((n - k as f64 + 1.0) * p);
        if value < NEGLIGIBLE {
            break;
        }
        k -= 1;
        below.push(value);
    }
    let low = mode - below.len() as u64;
    let mut mass: Vec<f64> = below.into_iter().rev().collect();
    mass.push(at_mode);
    let (mut value, mut k) = (at_mode, mode);
    while k < m {
        // pmf(k + 1) = pmf(k) · (m − k) p / ((k + 1) q)
        value *= (n - k as f64) * p / ((k as f64 + 1.0) * q);
        if value < NEGLIGIBLE {
            break;
        }
        k += 1;
        mass.push(value);
    }
    Lattice {
        offset: low as i64,
        mass,
    }
}

/// Which way a one-sided boundary rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Rejects when the count is at least the bound (the share is above p).
    Upper,
    /// Rejects when the count is at most the bound (the share is below p).
    Lower,
}

/// The exact one-sided boundary for the hits among `looks[k]` Bernoulli
/// trials at each look (information fraction `fractions[k]`, 1 at the
/// plan's last look), designed at share `p`: for [`Side::Upper`] the
/// least count that rejects "the share is at most p", for [`Side::Lower`]
/// the greatest that rejects "at least p"; `None` where no count may reject
/// (the spending allows too little). At share p the chance of ever
/// rejecting is at most α, and less at any share on the other side (the
/// crossing event is monotone in p). Each bound is computed as if no other
/// boundary stopped the run first: other stops only lower the error.
pub fn binomial_boundary(
    looks: &[u64],
    fractions: &[f64],
    p: f64,
    alpha: f64,
    spending: Spending,
    side: Side,
) -> Vec<Option<u64>> {
    let mut running = Lattice::origin();
    let mut spent = 0.0;
    let mut previous = 0;
    let mut bounds = Vec::with_capacity(looks.len());
    for (&n, &t) in looks.iter().zip(fractions) {
        running = running.add(&binomial_increment(n - previous, p));
        previous = n;
        let allowed = spending.spent(alpha, t) - spent;
        let bound = match side {
            Side::Upper => {
                // The least a with P(X ≥ a) ≤ allowed, from the top down.
                let mut tail = 0.0;
                let mut bound = running.offset + running.mass.len() as i64;
                for (i, mass) in running.mass.iter().enumerate().rev() {
                    if tail + mass > allowed {
                        break;
                    }
                    tail += mass;
                    bound = running.offset + i as i64;
                }
                spent += running.take(|x| x >= bound);
                u64::try_from(bound).ok().filter(|b| *b <= n)
            }
            Side::Lower => {
                let mut head = 0.0;
                let mut bound = running.offset - 1;
                for (i, mass) in running.mass.iter().enumerate() {
                    if head + mass > allowed {
                        break;
                    }
                    head += mass;
                    bound = running.offset + i as i64;
                }
                spent += running.take(|x| x <= bound);
                u64::try_from(bound).ok()
            }
        };
        bounds.push(bound);
    }
    bounds
}

/// What a design does at one true parameter.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Operating {
    /// Chance it ever stops with a pass, or a fail.
    pub pass: f64,
    pub fail: f64,
    /// Mean observations at the stop (the last look when it never stops).
    pub expected_n: f64,
}

/// What a look decides for a value of the statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Pass,
    Fail,
    Continue,
}

/// Walks counts of hits with true share `p` through `looks`, stopping each
/// path where `stop(look, hits)` says: the design's exact operating
/// characteristics.
pub fn binomial_walk(looks: &[u64], p: f64, mut stop: impl FnMut(usize, u64) -> Stop) -> Operating {
    let mut running = Lattice::origin();
    let mut previous = 0;
    let mut operating = Operating::default();
    for (look, &n) in looks.iter().enumerate() {
        running = running.add(&binomial_increment(n - previous, p));
        previous = n;
        let (pass, fail) = running.settle(|x| stop(look, x as u64));
        operating.pass += pass;
        operating.fail += fail;
        operating.expected_n += (pass + fail) * n as f64;
        if running.mass.is_empty() {
            break;
        }
    }
    operating.expected_n += running.total() * previous as f64;
    operating
}

/// Standard normal density.
fn normal_density(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// A Gaussian increment of variance `variance` (in grid cells²) on the
/// grid, out to 9 standard deviations, normalised to mass 1.
fn gaussian_increment(variance: f64) -> Lattice {
    let sd = variance.sqrt();
    let reach = (9.0 * sd).ceil() as i64;
    let mut mass: Vec<f64> = (-reach..=reach)
        .map(|cell| normal_density(cell as f64 / sd))
        .collect();
    let total: f64 = mass.iter().sum();
    mass.iter_mut().for_each(|m| *m /= total);
    Lattice {
        offset: -reach,
        mass,
    }
}

/// One-sided upper z boundaries for a statistic observed at information
/// fractions `fractions` (increasing, the last 1): Z_k ≥ u_k rejects, and
/// under the null the chance of ever rejecting is at most α, spent by
/// `spending`. The score S_k = Z_k·√t_k is Brownian motion in t, walked on
/// a grid of 1/[`GRID_PER_SD`] (a bound is the least grid cell allowed, so
/// the grid errs on the side of α).
pub fn normal_boundary(fractions: &[f64], alpha: f64, spending: Spending) -> Vec<f64> {
    let mut running = Lattice::origin();
    let mut spent = 0.0;
    let mut previous = 0.0;
    let mut bounds = Vec::with_capacity(fractions.len());
    for &t in fractions {
        let step = (t - previous).max(1e-12);
        previous = t;
        running = running.add(&gaussian_increment(step * GRID_PER_SD * GRID_PER_SD));
        let allowed = spending.spent(alpha, t) - spent;
        let mut tail = 0.0;
        let mut bound = running.offset + running.mass.len() as i64;
        for (i, mass) in running.mass.iter().enumerate().rev() {
            if tail + mass > allowed {
                break;
            }
            tail += mass;
            bound = running.offset + i as i64;
        }
        spent += running.take(|cell| cell >= bound);
        // A cell stands for the half-open stretch around it: the bound is
        // its lower edge.
        bounds.push((bound as f64 - 0.5) / GRID_PER_SD / t.sqrt());
    }
    bounds
}

/// The chance that a statistic with drift `drift` (its mean at t = 1, in
/// standard deviations of the whole plan) ever crosses upper boundaries
/// `bounds` at `fractions`: the power of [`normal_boundary`]'s test.
pub fn normal_crossing(fractions: &[f64], bounds: &[f64], drift: f64) -> Operating {
    let mut running = Lattice::origin();
    let mut previous = 0.0;
    let mut operating = Operating::default();
    for (&t, &bound) in fractions.iter().zip(bounds) {
        let step = (t - previous).max(1e-12);
        previous = t;
        let mut increment = gaussian_increment(step * GRID_PER_SD * GRID_PER_SD);
        // The drift moves the increment by drift·step plan deviations.
        let shift = drift * step * GRID_PER_SD;
        let whole = shift.floor();
        let part = shift - whole;
        let mut shifted = vec![0.0; increment.mass.len() + 1];
        for (i, m) in increment.mass.iter().enumerate() {
            shifted[i] += m * (1.0 - part);
            shifted[i + 1] += m * part;
        }
        increment.mass = shifted;
        increment.offset += whole as i64;
        running = running.add(&increment);
        let cell = (bound * t.sqrt() * GRID_PER_SD + 0.5).ceil() as i64;
        let crossed = running.take(|x| x >= cell);
        operating.pass += crossed;
        operating.expected_n += crossed * t;
    }
    operating.expected_n += running.total() * previous;
    operating
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_increments_sum_to_one_and_match_the_pmf() {
        for (m, p) in [(1, 0.3), (10, 0.5), (500, 0.08), (20_000, 0.2), (7, 0.999)] {
            let increment = binomial_increment(m, p);
            assert!((increment.total() - 1.0).abs() < 1e-12, "{m} {p}");
        }
        // Bin(10, 0.5) at 3: 120/1024.
        let b = binomial_increment(10, 0.5);
        assert!((b.mass[(3 - b.offset) as usize] - 120.0 / 1024.0).abs() < 1e-14);
    }

    #[test]
    fn one_look_is_the_exact_binomial_test() {
        // Bin(100, 0.1): P(X ≥ 18) = 0.010007, P(X ≥ 19) = 0.004581 (SciPy
        // binom.sf(17, 100, 0.1) and sf(18)); the bound at α 0.01 is 19.
        let bounds = binomial_boundary(&[100], &[1.0], 0.1, 0.01, Spending::HSD, Side::Upper);
        assert_eq!(bounds, vec![Some(19)]);
        // P(X ≤ 3) = 0.007836, P(X ≤ 4) = 0.023711: the lower bound is 3.
        let bounds = binomial_boundary(&[100], &[1.0], 0.1, 0.01, Spending::HSD, Side::Lower);
        assert_eq!(bounds, vec![Some(3)]);
    }

    #[test]
    fn the_error_at_the_design_point_is_at_most_alpha() {
        let looks = geometric_looks(32, 1.25, 20_000);
        for (p, side) in [(0.08, Side::Upper), (0.12, Side::Lower), (0.5, Side::Upper)] {
            let fractions = fractions(&looks);
            let bounds = binomial_boundary(&looks, &fractions, p, 0.01, Spending::HSD, side);
            let error = binomial_walk(&looks, p, |k, x| {
                let crossed = match (side, bounds[k]) {
                    (Side::Upper, Some(b)) => x >= b,
                    (Side::Lower, Some(b)) => x <= b,
                    (_, None) => false,
                };
                if crossed {
                    Stop::Fail
                } else {
                    Stop::Continue
                }
            });
            assert!(error.fail <= 0.01 + 1e-12, "{p}: {}", error.fail);
            assert!(error.fail > 0.008, "{p}: spends most of α, {}", error.fail);
        }
    }

    #[test]
    fn hsd_spending_ends_at_alpha() {
        let s = Spending::HSD;
        assert_eq!(s.spent(0.01, 1.0), 0.01);
        assert!(s.spent(0.01, 0.5) < 0.002);
        assert!(s.spent(0.01, 0.01) > 0.0);
        assert!((Spending { gamma: 0.0 }.spent(0.01, 0.5) - 0.005).abs() < 1e-15);
    }

    #[test]
    fn one_normal_look_is_the_z_quantile() {
        let bounds = normal_boundary(&[1.0], 0.025, Spending::HSD);
        assert!((bounds[0] - 1.959964).abs() < 0.01, "{bounds:?}");
    }
}
