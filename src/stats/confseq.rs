//! Confidence sequences: intervals that hold at every sample size at once,
//! so a run may stop the moment one is decisive and still state its error
//! rate (Robbins 1970; Howard, Ramdas, McAuliffe & Sekhon 2021,
//! "Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann.
//! Statist. 49(2); Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas 2024,
//! "Time-uniform central limit theory and asymptotic confidence sequences",
//! Ann. Statist. 52(6)).
//!
//! Two kinds are here:
//! - [`BernoulliCs`], exact and nonasymptotic, for a share or an error rate:
//!   the set of `p` at which a mixture likelihood ratio M_n(p) is still
//!   below 1/α. M_n(p) is a nonnegative martingale with mean 1 when the true
//!   share is `p`, so by Ville's inequality the chance it *ever* reaches 1/α
//!   is at most α: the interval misses the truth, at any time, with
//!   probability at most α (both sides together). The mixture is a Beta(a, b)
//!   prior over alternatives near the expectation (Robbins' conjugate
//!   mixture, Howard et al. §3.4), a flat Beta(1, 1) that makes a share far
//!   from it (25% where 5% was meant) decisive in tens of requests, and two
//!   point masses at 0 and 1 for "nothing at all" (a dead canary) and
//!   "everything". It is written here: no Rust crate has it.
//! - [`normal_mixture_radius`], the asymptotic (CLT) Gaussian-mixture
//!   boundary for a mean with an estimated variance (Waudby-Smith et al.,
//!   Theorem 2.2; the one-sided form of Howard et al. eq. (14)).
use statrs::function::gamma::ln_gamma;

/// The mixing distribution over alternatives: Beta(a, b) with weight
/// 1 − w0 − w1 − w_flat, a flat Beta(1, 1) with weight w_flat, and point
/// masses w0 at 0 and w1 at 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mixture {
    pub a: f64,
    pub b: f64,
    pub w_zero: f64,
    pub w_one: f64,
    pub w_flat: f64,
}

impl Mixture {
    /// A Beta part centred on `center` whose spread suits detecting a
    /// deviation of `scale`: concentration m = k·c(1−c)/scale², so the prior's
    /// standard deviation is scale/√k. k = 8 was chosen by seeded simulation
    /// (mean responses to a pass at p0 lowest among 2, 4, 8, 16 at 1%, 10%, 50%).
    pub fn centred(center: f64, scale: f64, w_zero: f64, w_one: f64, w_flat: f64) -> Self {
        const K: f64 = 8.0;
        let center = center.clamp(1e-6, 1.0 - 1e-6);
        let concentration = (K * center * (1.0 - center) / (scale * scale)).max(2.0);
        Self {
            a: concentration * center,
            b: concentration * (1.0 - center),
            w_zero,
            w_one,
            w_flat,
        }
    }
}

/// A confidence sequence for the success probability of a Bernoulli stream,
/// updated in O(1) per observation.
#[derive(Debug, Clone)]
pub struct BernoulliCs {
    mixture: Mixture,
    /// ln(1/α): a `p` whose log mixture ratio reaches it is excluded.
    log_threshold: f64,
    hits: u64,
    trials: u64,
    /// ln B(a+S, b+F) − ln B(a, b), kept incrementally.
    log_beta_ratio: f64,
    /// ln B(1+S, 1+F) − ln B(1, 1), the flat part's.
    log_flat_ratio: f64,
}

impl BernoulliCs {
    /// An empty sequence at level 1 − `alpha` (two sides together).
    pub fn new(mixture: Mixture, alpha: f64) -> Self {
        Self {
            mixture,
            log_threshold: (1.0 / alpha).ln(),
            hits: 0,
            trials: 0,
            log_beta_ratio: 0.0,
            log_flat_ratio: 0.0,
        }
    }

    /// A sequence that has seen `hits` of `trials` (any order: the mixture
    /// depends on the counts only).
    pub fn from_counts(mixture: Mixture, alpha: f64, hits: u64, trials: u64) -> Self {
        let mut cs = Self::new(mixture, alpha);
        let (a, b) = (mixture.a, mixture.b);
        let misses = trials.saturating_sub(hits);
        cs.hits = hits;
        cs.trials = trials;
        cs.log_beta_ratio = ln_beta(a + hits as f64, b + misses as f64) - ln_beta(a, b);
        cs.log_flat_ratio = ln_beta(1.0 + hits as f64, 1.0 + misses as f64);
        cs
    }

    /// Adds one observation.
    pub fn push(&mut self, hit: bool) {
        let Mixture { a, b, .. } = self.mixture;
        let total = a + b + self.trials as f64;
        let flat_total = 2.0 + self.trials as f64;
        let misses = (self.trials - self.hits) as f64;
        if hit {
            self.log_beta_ratio += ((a + self.hits as f64) / total).ln();
            self.log_flat_ratio += ((1.0 + self.hits as f64) / flat_total).ln();
            self.hits += 1;
        } else {
            self.log_beta_ratio += ((b + misses) / total).ln();
            self.log_flat_ratio += ((1.0 + misses) / flat_total).ln();
        }
        self.trials += 1;
    }

    /// Adds `hits` and `misses` at once (the same as pushing them one by
    /// one: the mixture depends on the counts only).
    pub fn push_counts(&mut self, hits: u64, misses: u64) {
        let Mixture { a, b, .. } = self.mixture;
        let (s, f) = (self.hits as f64, (self.trials - self.hits) as f64);
        let (h, m) = (hits as f64, misses as f64);
        self.log_beta_ratio += ln_beta(a + s + h, b + f + m) - ln_beta(a + s, b + f);
        self.log_flat_ratio += ln_beta(1.0 + s + h, 1.0 + f + m) - ln_beta(1.0 + s, 1.0 + f);
        self.hits += hits;
        self.trials += hits + misses;
    }

    pub fn hits(&self) -> u64 {
        self.hits
    }

    pub fn trials(&self) -> u64 {
        self.trials
    }

    /// The observed share (0 before any observation).
    pub fn estimate(&self) -> f64 {
        if self.trials == 0 {
            0.0
        } else {
            self.hits as f64 / self.trials as f64
        }
    }

    /// ln M_n(p), the log mixture likelihood ratio against `p` in (0, 1).
    pub fn log_ratio(&self, p: f64) -> f64 {
        self.log_ratio_at(&Point::new(p))
    }

    /// ln M_n at a point whose logarithms are already known (the hot path:
    /// a share test evaluates the same band edges after every response).
    pub fn log_ratio_at(&self, point: &Point) -> f64 {
        let Mixture {
            w_zero,
            w_one,
            w_flat,
            ..
        } = self.mixture;
        let hits = self.hits as f64;
        let misses = (self.trials - self.hits) as f64;
        let against = -hits * point.ln_p - misses * point.ln_q;
        let beta_weight = 1.0 - w_zero - w_one - w_flat;
        let beta = if beta_weight > 0.0 {
            beta_weight.ln() + self.log_beta_ratio + against
        } else {
            f64::NEG_INFINITY
        };
        let flat = if w_flat > 0.0 {
            w_flat.ln() + self.log_flat_ratio + against
        } else {
            f64::NEG_INFINITY
        };
        let zero = if w_zero > 0.0 && self.hits == 0 {
            w_zero.ln() - self.trials as f64 * point.ln_q
        } else {
            f64::NEG_INFINITY
        };
        let one = if w_one > 0.0 && self.hits == self.trials {
            w_one.ln() - self.trials as f64 * point.ln_p
        } else {
            f64::NEG_INFINITY
        };
        log_sum_exp(&[beta, flat, zero, one])
    }

    /// Whether the point is outside the sequence now (never an end of the
    /// unit interval).
    pub fn excludes_point(&self, point: &Point) -> bool {
        point.p > 0.0 && point.p < 1.0 && self.log_ratio_at(point) >= self.log_threshold
    }

    /// Whether `p` is outside the sequence now. `p` at 0 or 1 is never
    /// tested (an edge of the unit interval is not a hypothesis here).
    pub fn excludes(&self, p: f64) -> bool {
        self.excludes_point(&Point::new(p))
    }

    /// The interval now: every `p` not excluded. `None` when it is empty
    /// (every share is excluded — the data fit no Bernoulli stream).
    pub fn interval(&self) -> Option<(f64, f64)> {
        let inside = self.inside_point()?;
        Some((self.crossing(inside, 0.0), self.crossing(inside, 1.0)))
    }

    /// The interval's lower end alone (0 when the interval is empty).
    pub fn lower(&self) -> f64 {
        self.inside_point()
            .map_or(0.0, |inside| self.crossing(inside, 0.0))
    }

    /// The interval's upper end alone (1 when the interval is empty).
    pub fn upper(&self) -> f64 {
        self.inside_point()
            .map_or(1.0, |inside| self.crossing(inside, 1.0))
    }

    /// A share inside the interval, or `None` when it is empty. ln M is
    /// convex in p (a log-sum of log-convex terms), so the interval is one
    /// piece around its minimum; the estimate is almost always in it, and
    /// when it is not, the minimum is found by ternary search.
    fn inside_point(&self) -> Option<f64> {
        const TINY: f64 = 1e-12;
        let inside = self.estimate().clamp(TINY, 1.0 - TINY);
        if self.log_ratio(inside) < self.log_threshold {
            return Some(inside);
        }
        let (mut low, mut high) = (TINY, 1.0 - TINY);
        for _ in 0..200 {
            let third = (high - low) / 3.0;
            let (left, right) = (low + third, high - third);
            if self.log_ratio(left) < self.log_ratio(right) {
                high = right;
            } else {
                low = left;
            }
            if high - low < 1e-13 {
                break;
            }
        }
        let minimum = 0.5 * (low + high);
        (self.log_ratio(minimum) < self.log_threshold).then_some(minimum)
    }

    /// Where ln M crosses the threshold between `inside` and the end of the
    /// unit interval `end` (0 or 1), by bisection to 1e-12 of the bracket;
    /// the end itself when it is never crossed.
    fn crossing(&self, mut inside: f64, end: f64) -> f64 {
        const TINY: f64 = 1e-12;
        let mut outside = end.clamp(TINY, 1.0 - TINY);
        if self.log_ratio(outside) < self.log_threshold {
            return end;
        }
        for _ in 0..42 {
            let middle = 0.5 * (inside + outside);
            if self.log_ratio(middle) < self.log_threshold {
                inside = middle;
            } else {
                outside = middle;
            }
        }
        0.5 * (inside + outside)
    }

    /// Where the sequence stands against a band: inside it (both edges
    /// excluded, the interval between them), outside it (the nearest edge
    /// excluded, the interval beyond it), or undecided.
    pub fn against(&self, band: &Band) -> Placement {
        let low_out = band.low.p <= 0.0 || self.excludes_point(&band.low);
        let high_out = band.high.p >= 1.0 || self.excludes_point(&band.high);
        if !low_out && !high_out {
            // Both edges still inside: nothing is decided (the usual case).
            return Placement::Undecided;
        }
        let estimate = self.estimate();
        // The interval is convex: if it holds the estimate and excludes an
        // edge, it lies wholly on the estimate's side of that edge.
        let holds_estimate = self.log_ratio(estimate.clamp(1e-9, 1.0 - 1e-9)) < self.log_threshold;
        if !holds_estimate {
            return Placement::Undecided;
        }
        if estimate < band.low.p {
            if low_out {
                Placement::Outside
            } else {
                Placement::Undecided
            }
        } else if estimate > band.high.p {
            if high_out {
                Placement::Outside
            } else {
                Placement::Undecided
            }
        } else if low_out && high_out {
            Placement::Inside
        } else {
            Placement::Undecided
        }
    }
}

/// A share with its logarithms computed once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub p: f64,
    ln_p: f64,
    ln_q: f64,
}

impl Point {
    pub fn new(p: f64) -> Self {
        Self {
            p,
            ln_p: p.ln(),
            ln_q: (-p).ln_1p(),
        }
    }
}

/// A band [low, high] of shares; an edge at 0 or 1 is the end of the unit
/// interval and always inside.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub low: Point,
    pub high: Point,
}

impl Band {
    pub fn new(low: f64, high: f64) -> Self {
        Self {
            low: Point::new(low),
            high: Point::new(high),
        }
    }
}

/// Where a confidence sequence lies against a band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Inside,
    Outside,
    Undecided,
}

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

fn log_sum_exp(terms: &[f64]) -> f64 {
    let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if top == f64::NEG_INFINITY {
        return top;
    }
    top + terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln()
}

/// ρ² of the Gaussian mixture that makes the boundary tightest at `t_star`
/// observations (Howard et al. 2021, eq. (16) with the one-sided α).
pub fn tuned_rho2(t_star: f64, alpha: f64) -> f64 {
    let l = -2.0 * alpha.ln();
    (l + (l + 1.0).ln()) / t_star.max(1.0)
}

/// One-sided radius of the Gaussian-mixture confidence sequence for a mean
/// after `t` observations with standard deviation `sigma`: the running mean
/// stays below (above) the true mean plus (minus) this radius at every t,
/// except with probability α — exactly for Gaussian data, asymptotically
/// otherwise (Waudby-Smith et al. 2024, Theorem 2.2):
/// σ·√( 2(tρ²+1)/(t²ρ²) · ln(√(tρ²+1)/α) ).
pub fn normal_mixture_radius(t: f64, sigma: f64, alpha: f64, rho2: f64) -> f64 {
    if t <= 0.0 {
        return f64::INFINITY;
    }
    let growth = t * rho2 + 1.0;
    sigma * (2.0 * growth / (t * t * rho2) * (growth.sqrt() / alpha).ln()).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_and_counted_agree() {
        let mixture = Mixture::centred(0.1, 0.02, 0.4, 0.1, 0.1);
        let mut running = BernoulliCs::new(mixture, 0.01);
        for index in 0..500u64 {
            running.push(index % 9 == 0);
        }
        let counted = BernoulliCs::from_counts(mixture, 0.01, running.hits(), running.trials());
        for p in [0.05, 0.1, 0.2] {
            let (x, y) = (running.log_ratio(p), counted.log_ratio(p));
            assert!((x - y).abs() < 1e-8, "{p}: {x} vs {y}");
        }
    }

    #[test]
    fn counts_at_once_equal_one_by_one() {
        let mixture = Mixture::centred(0.1, 0.02, 0.4, 0.1, 0.1);
        let mut one = BernoulliCs::new(mixture, 0.01);
        let mut bulk = BernoulliCs::new(mixture, 0.01);
        for index in 0..300u64 {
            one.push(index % 7 == 0);
        }
        bulk.push_counts(20, 80);
        bulk.push_counts(23, 177);
        assert_eq!((one.hits(), one.trials()), (bulk.hits(), bulk.trials()));
        for p in [0.05, 0.14, 0.3] {
            assert!((one.log_ratio(p) - bulk.log_ratio(p)).abs() < 1e-8);
        }
    }

    #[test]
    fn a_dead_stream_is_excluded_by_the_point_mass() {
        let mixture = Mixture::centred(0.1, 0.02, 0.4, 0.1, 0.1);
        let mut cs = BernoulliCs::new(mixture, 0.01);
        let mut excluded_at = None;
        for n in 1..=200 {
            cs.push(false);
            if excluded_at.is_none() && cs.excludes(0.08) {
                excluded_at = Some(n);
            }
        }
        // (1 − 0.08)^n ≤ 0.4·0.01 first at n = 67; the Beta part may add a little.
        assert!(
            excluded_at.is_some_and(|n| (60..=67).contains(&n)),
            "{excluded_at:?}"
        );
    }

    #[test]
    fn the_interval_brackets_the_estimate() {
        let cs =
            BernoulliCs::from_counts(Mixture::centred(0.1, 0.02, 0.4, 0.1, 0.1), 0.01, 100, 1000);
        let (low, high) = cs.interval().unwrap();
        assert!(low < 0.1 && high > 0.1, "{low}–{high}");
        assert!(cs.excludes(low - 1e-6) && cs.excludes(high + 1e-6));
        assert!(!cs.excludes(0.1));
    }
}
