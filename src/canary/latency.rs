//! The latency check: is the canary slower than the baseline by more than
//! the margin? Request-level data, compared where they were sent together,
//! with a dependence correction measured on the run, decided by a
//! group-sequential design planned from the budget.
//!
//! **The statistic.** Responses are binned by due time (bins of about
//! [`BIN_REQUESTS`] requests, so a bin usually holds both variants).
//! Within bin k the difference of the variants' mean log latency d_k (for
//! an absolute margin, of mean latency in ms) is free of whatever both
//! share at that moment: a stall of the client, the gateway or the
//! machine, a drift over the run. The estimate is their precision-weighted
//! mean D = Σ h_k·d_k / Σ h_k with h_k = n_c·n_b / (n_c + n_b) (the weight of
//! a difference of two means of equal spread).
//!
//! **The dependence correction.** What the bins do not share is still
//! correlated in time (seen on nginx on loopback: log latency correlated
//! 0.1 over 100 requests, 0.06 over 500). The variance of D is the
//! batch-means estimate: consecutive bins are grouped into
//! [`BATCHES`] batches, and Var(D) = Σ_g S_g² / (Σh)² · G/(G − 1) with
//! S_g = Σ_{k∈g} h_k(d_k − D) — valid for any dependence shorter than a
//! batch (n/G requests: 500 at 20,000), and for unequal spreads
//! (Flegal & Jones 2010, Ann. Statist. 38(2)). It is compared with the
//! variance the spread within bins gives (pooled over both variants, so
//! the baseline's many responses dominate it) and the larger is used:
//! latency is skewed, and a canary that happened to miss the rare slow
//! responses has both a low D and a low batch-means spread — alone, that
//! made a canary exactly at the margin pass 4% of the time at α = 1% on
//! a recorded nginx trace. Its z statistic is referred to Student's t on
//! G − 1 degrees of freedom.
//!
//! **The decision.** Two one-sided tests of "the increase is at most the
//! margin" (fail when rejected) and "at least the margin" (pass), each at
//! α, looked at on the split's geometric grid of responses, with
//! Hwang–Shih–DeCani(−4) spending over the planned responses (z bounds
//! from [`normal_boundary`], carried to t). A look needs [`MIN_BINS`]
//! bins with both variants. The zone it decides with power is
//! drift₉₅ · √(Var(D)·n / N): stated at the start for an assumed spread
//! and again from the spread measured.
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use super::health::{Block, LatencyMargin, Standing};
use crate::stats::sequential::{
    fractions, geometric_looks, normal_boundary, normal_crossing, Spending,
};

/// Requests a bin aims to hold (its width is this many at the planned rate).
pub const BIN_REQUESTS: f64 = 64.0;
/// Batches of bins for the variance.
pub const BATCHES: usize = 40;
/// Fewest bins holding both variants before a look may decide.
pub const MIN_BINS: usize = 40;
/// Most bins kept: past it, neighbours merge (the width doubles), so
/// memory stays flat however long the run.
pub const MAX_BINS: usize = 4096;
/// The spread of log latency a plan assumes until it has measured one
/// (nginx on loopback: 0.33 idle, 0.57 on a busy machine).
pub const ASSUMED_LOG_SPREAD: f64 = 0.6;

/// Per bin of due time, per variant: a [`Block`] of sums (mergeable).
#[derive(Debug, Clone, PartialEq)]
pub struct Bins {
    pub width_us: u64,
    pub variants: usize,
    pub bins: Vec<Vec<Block>>,
}

impl Bins {
    pub fn new(width_us: u64, variants: usize) -> Self {
        Self {
            width_us: width_us.max(1),
            variants,
            bins: Vec::new(),
        }
    }

    /// The width for a run offering `rate_per_s` at its peak with variants
    /// as small as `smallest_share`: about [`BIN_REQUESTS`] requests, at
    /// least enough for 3 of the smallest variant's, rounded to a power of
    /// two of milliseconds (so shards' bins line up and merge), 1 ms to 1 s.
    pub fn width_for(rate_per_s: Option<f64>, smallest_share: f64) -> u64 {
        let requests = BIN_REQUESTS.max(3.0 / smallest_share.max(1e-3));
        let ms = match rate_per_s {
            Some(rate) if rate > 0.0 => requests / rate * 1000.0,
            _ => 100.0,
        };
        let ms = ms.clamp(1.0, 1024.0);
        let power = 2f64.powi(ms.log2().round() as i32);
        (power * 1000.0) as u64
    }

    pub fn add(&mut self, due_us: u64, variant: usize, latency_ms: f64) {
        let mut bin = (due_us / self.width_us) as usize;
        while bin >= MAX_BINS {
            self.coarsen();
            bin = (due_us / self.width_us) as usize;
        }
        if self.bins.len() <= bin {
            self.bins
                .resize(bin + 1, vec![Block::default(); self.variants]);
        }
        self.bins[bin][variant].add(latency_ms);
    }

    /// Doubles the width: bin pairs merge.
    fn coarsen(&mut self) {
        let merged = self
            .bins
            .chunks(2)
            .map(|pair| {
                let mut row = pair[0].clone();
                if let Some(next) = pair.get(1) {
                    for (mine, theirs) in row.iter_mut().zip(next) {
                        mine.merge(theirs);
                    }
                }
                row
            })
            .collect();
        self.bins = merged;
        self.width_us *= 2;
    }

    /// Adds another run's bins of the same clock (a shard's): both are
    /// brought to the coarser width first.
    pub fn merge(&mut self, other: &Bins) {
        let mut other = other.clone();
        while self.width_us < other.width_us {
            self.coarsen();
        }
        while other.width_us < self.width_us {
            other.coarsen();
        }
        if self.bins.len() < other.bins.len() {
            self.bins
                .resize(other.bins.len(), vec![Block::default(); self.variants]);
        }
        for (mine, theirs) in self.bins.iter_mut().zip(&other.bins) {
            for (a, b) in mine.iter_mut().zip(theirs) {
                a.merge(b);
            }
        }
    }

    /// Each bin's blocks of `variant` and `baseline`.
    pub fn pairs(&self, variant: usize, baseline: usize) -> Vec<(Block, Block)> {
        self.bins
            .iter()
            .map(|row| (row[variant], row[baseline]))
            .collect()
    }
}

/// The estimate from the bins so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// D, on the margin's scale (log ratio, or ms).
    pub increase: f64,
    /// Its standard error (batch means).
    pub standard_error: f64,
    /// Batches (the t statistic has one fewer degrees of freedom).
    pub batches: usize,
    /// Bins with both variants.
    pub bins: usize,
    /// Responses of each variant in those bins.
    pub variant: u64,
    pub baseline: u64,
}

impl Estimate {
    /// The spread per response of the whole run: √(Var(D)·n).
    pub fn unit_spread(&self) -> f64 {
        self.standard_error * ((self.variant + self.baseline) as f64).sqrt()
    }
}

/// The within-bin estimate and its batch-means standard error, or None
/// with fewer than [`MIN_BINS`] informative bins.
pub fn estimate(pairs: &[(Block, Block)], margin: LatencyMargin) -> Option<Estimate> {
    let informative: Vec<(f64, f64, &Block, &Block)> = pairs
        .iter()
        .filter(|(variant, baseline)| variant.count > 0 && baseline.count > 0)
        .map(|(variant, baseline)| {
            let (nc, nb) = (variant.count as f64, baseline.count as f64);
            (
                variant.mean(margin) - baseline.mean(margin),
                nc * nb / (nc + nb),
                variant,
                baseline,
            )
        })
        .collect();
    if informative.len() < MIN_BINS {
        return None;
    }
    let weight: f64 = informative.iter().map(|bin| bin.1).sum();
    let increase = informative.iter().map(|bin| bin.0 * bin.1).sum::<f64>() / weight;
    let batches = BATCHES.min(informative.len() / 2);
    let per_batch = informative.len() as f64 / batches as f64;
    let mut sums = vec![0.0; batches];
    for (index, bin) in informative.iter().enumerate() {
        let batch = ((index as f64 / per_batch) as usize).min(batches - 1);
        sums[batch] += bin.1 * (bin.0 - increase);
    }
    let batch_means = sums.iter().map(|s| s * s).sum::<f64>() / (weight * weight) * batches as f64
        / (batches as f64 - 1.0);
    // The spread within bins, pooled over both variants (the baseline's
    // many responses dominate it): what D's variance is with no
    // dependence left between bins. The larger of the two is used, so a
    // canary that missed the baseline's rare slow responses — a low D
    // with a low batch-means spread — is not taken for a fast one.
    let (deviations, freedom) = informative.iter().fold((0.0, 0.0), |(d, f), bin| {
        (
            d + bin.2.deviations(margin) + bin.3.deviations(margin),
            f + (bin.2.count + bin.3.count) as f64 - 2.0,
        )
    });
    let pooled = if freedom > 0.0 {
        deviations / freedom / weight
    } else {
        0.0
    };
    Some(Estimate {
        increase,
        standard_error: batch_means.max(pooled).sqrt().max(1e-12),
        batches,
        bins: informative.len(),
        variant: informative.iter().map(|bin| bin.2.count).sum(),
        baseline: informative.iter().map(|bin| bin.3.count).sum(),
    })
}

/// The latency check's plan: looks over the responses, each side's z
/// bounds, and the drift at which a side decides with the plan's power.
#[derive(Debug, Clone)]
pub struct LatencyDesign {
    pub looks: Vec<u64>,
    bounds: Vec<f64>,
    /// In standard errors of the plan's last look.
    pub drift_for_power: f64,
    pub alpha: f64,
    pub power: f64,
}

impl LatencyDesign {
    pub fn planned(budget: u64, alpha: f64, power: f64) -> Self {
        let looks = geometric_looks(
            super::design::FIRST_LOOK,
            super::design::LOOK_RATIO,
            budget.max(1),
        );
        let fractions = fractions(&looks);
        let bounds = normal_boundary(&fractions, alpha, Spending::HSD);
        let crossing = |drift: f64| normal_crossing(&fractions, &bounds, drift).pass;
        let (mut low, mut high) = (0.0, 12.0);
        for _ in 0..40 {
            let middle = 0.5 * (low + high);
            if crossing(middle) >= power {
                high = middle;
            } else {
                low = middle;
            }
        }
        Self {
            looks,
            bounds,
            drift_for_power: high,
            alpha,
            power,
        }
    }

    /// The responses the plan ends at.
    pub fn budget(&self) -> u64 {
        self.looks.last().copied().unwrap_or(0)
    }

    /// The zone, on the margin's scale, for a spread per response of
    /// `unit_spread`: increases this far from the margin are decided with
    /// the plan's power.
    pub fn zone(&self, unit_spread: f64) -> f64 {
        self.drift_for_power * unit_spread / (self.budget().max(1) as f64).sqrt()
    }

    /// The look at `responses`, if it is one.
    pub fn look_at(&self, responses: u64) -> Option<usize> {
        self.looks.binary_search(&responses).ok()
    }

    /// What look `look` decides from `estimate` against `limit` (the margin
    /// on its scale): the z bound carried to Student's t on the batches'
    /// degrees of freedom.
    pub fn decide(&self, look: usize, estimate: &Estimate, limit: f64) -> Standing {
        decide_with(self.bounds[look], estimate, limit)
    }

    /// The z bound of one last look after the first `taken` planned looks, spending the rest of α there (a run that
    /// ends before its plan).
    pub fn final_bound(&self, taken: usize) -> f64 {
        let budget = self.budget().max(1) as f64;
        let mut fractions: Vec<f64> = self.looks[..taken.min(self.looks.len())]
            .iter()
            .map(|n| *n as f64 / budget)
            .collect();
        fractions.push(1.0);
        normal_boundary(&fractions, self.alpha, Spending::HSD)
            .last()
            .copied()
            .unwrap_or(f64::INFINITY)
    }

    /// Planned looks at or before `responses`.
    pub fn taken(&self, responses: u64) -> usize {
        self.looks.partition_point(|n| *n <= responses)
    }
}

/// The z bound of one look with all of `alpha` (merged shards).
pub fn once_bound(alpha: f64) -> f64 {
    Normal::new(0.0, 1.0).map_or(2.326, |n| n.inverse_cdf(1.0 - alpha))
}

/// Where the latency check stands for one variant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyBounds {
    /// D on the margin's scale, and a (1 − 2α) interval around it for
    /// reading (the verdict rests on the design's bounds).
    pub increase: f64,
    pub low: f64,
    pub high: f64,
    pub estimate: Estimate,
    pub standing: Standing,
    /// The look that decided (1-based) and its responses; `None` while
    /// undecided, or for a decision at one look (merged, or the run's end).
    pub look: Option<(usize, u64)>,
}

impl LatencyBounds {
    /// The check from the bins: at planned look `look` of `design`, or —
    /// with `None` — once, with the α the design has left (all of it for
    /// merged shards). None before there is enough data.
    pub fn from_pairs(
        pairs: &[(Block, Block)],
        margin: LatencyMargin,
        alpha: f64,
        at: Decide<'_>,
    ) -> Option<Self> {
        let estimate = estimate(pairs, margin)?;
        let limit = margin.on_block_scale();
        let (standing, look) = match at {
            Decide::Look(design, look) => (
                design.decide(look, &estimate, limit),
                Some((look + 1, design.looks[look])),
            ),
            Decide::Once(bound) => (decide_with(bound, &estimate, limit), None),
            Decide::Watch => (Standing::Undecided, None),
        };
        let (low, high) = interval(&estimate, alpha);
        Some(Self {
            increase: estimate.increase,
            low,
            high,
            estimate,
            standing,
            look: look.filter(|_| standing != Standing::Undecided),
        })
    }
}

/// When the latency check is decided from the bins.
#[derive(Debug, Clone, Copy)]
pub enum Decide<'a> {
    /// At a planned look of the design.
    Look(&'a LatencyDesign, usize),
    /// Once, against this z bound.
    Once(f64),
    /// Not at all: the estimate only (between looks).
    Watch,
}

/// Decides against one z bound (carried to t).
fn decide_with(z_bound: f64, estimate: &Estimate, limit: f64) -> Standing {
    let bound = t_bound(z_bound, estimate.batches);
    let z = (estimate.increase - limit) / estimate.standard_error;
    if z >= bound {
        Standing::Fail
    } else if -z >= bound {
        Standing::Pass
    } else {
        Standing::Undecided
    }
}

/// A z bound carried to Student's t with `batches − 1` degrees of freedom
/// (the same tail probability).
pub fn t_bound(z: f64, batches: usize) -> f64 {
    let tail = Normal::new(0.0, 1.0).map_or(0.0, |n| n.sf(z));
    let freedom = (batches.max(2) - 1) as f64;
    StudentsT::new(0.0, 1.0, freedom).map_or(z, |t| t.inverse_cdf(1.0 - tail))
}

/// A (1 − 2α) interval for reading: D ± t(1 − α)·se.
pub fn interval(estimate: &Estimate, alpha: f64) -> (f64, f64) {
    let z = Normal::new(0.0, 1.0).map_or(2.326, |n| n.inverse_cdf(1.0 - alpha));
    let radius = t_bound(z, estimate.batches) * estimate.standard_error;
    (estimate.increase - radius, estimate.increase + radius)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_are_powers_of_two_milliseconds() {
        assert_eq!(Bins::width_for(Some(500.0), 0.07), 128_000);
        assert_eq!(Bins::width_for(Some(2000.0), 0.1), 32_000);
        assert_eq!(Bins::width_for(None, 0.1), 128_000);
        assert_eq!(Bins::width_for(Some(1.0), 0.5), 1_024_000);
    }

    #[test]
    fn bins_coarsen_and_merge_exactly() {
        let mut bins = Bins::new(1000, 2);
        for i in 0..10_000u64 {
            bins.add(i * 1000, (i % 3 == 0) as usize, 1.0 + (i % 7) as f64);
        }
        assert!(bins.bins.len() <= MAX_BINS);
        assert_eq!(bins.width_us, 4000);
        let total: u64 = bins.bins.iter().flatten().map(|b| b.count).sum();
        assert_eq!(total, 10_000);
        let before = bins.bins[1][0].count;
        let mut fine = Bins::new(1000, 2);
        fine.add(5_500, 0, 2.0);
        bins.merge(&fine);
        assert_eq!(bins.bins[1][0].count, before + 1);
    }

    #[test]
    fn one_look_is_the_t_quantile() {
        let estimate = Estimate {
            increase: 0.0,
            standard_error: 0.01,
            batches: 40,
            bins: 100,
            variant: 100,
            baseline: 1000,
        };
        let limit = 0.182;
        assert_eq!(
            decide_with(once_bound(0.01), &estimate, limit),
            Standing::Pass
        );
        // t(39) 0.99 = 2.426: an increase 2.4 se below the margin is not enough.
        let near = Estimate {
            increase: limit - 0.024,
            ..estimate
        };
        assert_eq!(
            decide_with(once_bound(0.01), &near, limit),
            Standing::Undecided
        );
    }
}
