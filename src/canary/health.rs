//! Canary health against the baseline, decided sequentially: an error-rate
//! check and a latency check, each with a confidence statement valid at
//! whatever moment the run stops.
//!
//! Each check has three outcomes, with these errors:
//! - *fail* when the canary is worse than the baseline by more than the
//!   margin with confidence (the lower bound of the increase is above the
//!   margin): a canary within the margin fails with probability ≤ α;
//! - *pass* when the upper bound of the increase is below the margin: a
//!   canary worse by the margin or more passes with probability ≤ α (passing
//!   needs every check to pass, an intersection–union test: no multiplicity
//!   correction — Berger 1982);
//! - *inconclusive* when the planned sample ends with neither.
//!
//! Errors. Each variant's error rate has an exact confidence sequence
//! ([`BernoulliCs`], level 1 − α/2); the increase's bounds combine them
//! (U_canary − L_baseline, L_canary − U_baseline), so each side of the
//! increase is wrong with probability ≤ α/2 + α/2. Responses that no variant
//! claims (transport errors, timeouts, unmarked 5xx, 429s, unmatched) cannot
//! be attributed: for passing they all count as the canary's errors, for
//! failing none do — so a canary whose requests time out never passes.
//!
//! Latency: see [`super::latency`] (request-level, compared within bins of
//! due time, a batch-means dependence correction, a group-sequential
//! design planned from the budget).
use crate::stats::binomial::normal_quantile;
use crate::stats::confseq::{BernoulliCs, Mixture};
/// Weight of "no errors at all" in the error-rate mixture: most healthy
/// variants answer without a single error, and that should be quick to show.
const ERROR_W_ZERO: f64 = 0.3;
/// Weight of a flat prior: an error rate far above the margin (a canary
/// failing half its requests) fails in tens of responses.
const ERROR_W_FLAT: f64 = 0.1;

/// The largest acceptable latency increase.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyMargin {
    /// A fraction of the baseline's latency: the canary's geometric-mean
    /// latency may be at most (1 + fraction) times the baseline's.
    Relative(f64),
    Absolute {
        ms: f64,
    },
}

impl LatencyMargin {
    /// The margin on the scale the blocks are compared on.
    pub fn on_block_scale(self) -> f64 {
        match self {
            LatencyMargin::Relative(fraction) => fraction.ln_1p(),
            LatencyMargin::Absolute { ms } => ms,
        }
    }

    pub fn describe(self) -> String {
        match self {
            LatencyMargin::Relative(fraction) => format!(
                "+{}% (ratio of geometric means)",
                crate::units::trim_float((fraction * 1000.0).round() / 10.0)
            ),
            LatencyMargin::Absolute { ms } => {
                format!("+{}ms (difference of means)", crate::units::trim_float(ms))
            }
        }
    }

    /// An increase on the block scale, for people: `+12.3%` or `+4.1ms`.
    pub fn show(self, value: f64) -> String {
        match self {
            LatencyMargin::Relative(_) => format!("{:+.1}%", value.exp_m1() * 100.0),
            LatencyMargin::Absolute { .. } => format!("{value:+.1}ms"),
        }
    }
}

/// What the health checks compare and at which level.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HealthSpec {
    pub alpha: f64,
    pub power: f64,
    pub max_error_increase: f64,
    pub max_latency_increase: LatencyMargin,
    /// The baseline error rate the plan assumes until it is observed.
    pub assumed_error_rate: f64,
}

/// Where a health check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Pass,
    Fail,
    Undecided,
}

/// The counts behind the error check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    pub variant_failed: u64,
    pub variant: u64,
    pub baseline_failed: u64,
    pub baseline: u64,
    /// Responses no variant claims, possibly either variant's failures.
    pub unattributable: u64,
}

/// Bounds on the error-rate increase (canary − baseline).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorBounds {
    pub increase: f64,
    /// Lower bound, with every unattributable response the baseline's.
    pub low: f64,
    /// Upper bound, with every unattributable response a canary error.
    pub high: f64,
    pub standing: Standing,
}

impl HealthSpec {
    /// The error-rate sequences' mixture: centred half a margin above the
    /// assumed baseline rate, spread over two margins (so it serves a canary
    /// as good as the baseline and one twice the margin worse alike).
    fn error_mixture(&self) -> Mixture {
        let margin = self.max_error_increase;
        Mixture::centred(
            self.assumed_error_rate + margin / 2.0,
            2.0 * margin,
            ERROR_W_ZERO,
            0.0,
            ERROR_W_FLAT,
        )
    }

    fn rate_sequence(&self, failed: u64, total: u64) -> BernoulliCs {
        BernoulliCs::from_counts(self.error_mixture(), self.alpha / 2.0, failed, total)
    }

    fn rate_lower(&self, failed: u64, total: u64) -> f64 {
        if total == 0 {
            return 0.0;
        }
        self.rate_sequence(failed, total).lower()
    }

    fn rate_upper(&self, failed: u64, total: u64) -> f64 {
        if total == 0 {
            return 1.0;
        }
        self.rate_sequence(failed, total).upper()
    }

    /// The error check now.
    pub fn error_bounds(&self, counts: &ErrorCounts) -> ErrorBounds {
        let u = counts.unattributable;
        let variant_low = self.rate_lower(counts.variant_failed, counts.variant);
        let variant_high = self.rate_upper(counts.variant_failed + u, counts.variant + u);
        let baseline_low = self.rate_lower(counts.baseline_failed, counts.baseline);
        let baseline_high = self.rate_upper(counts.baseline_failed + u, counts.baseline + u);
        let rate = |failed: u64, total: u64| {
            if total == 0 {
                0.0
            } else {
                failed as f64 / total as f64
            }
        };
        let low = variant_low - baseline_high;
        let high = variant_high - baseline_low;
        let margin = self.max_error_increase;
        ErrorBounds {
            increase: rate(counts.variant_failed, counts.variant)
                - rate(counts.baseline_failed, counts.baseline),
            low,
            high,
            standing: if counts.variant == 0 || counts.baseline == 0 {
                Standing::Undecided
            } else if low > margin {
                Standing::Fail
            } else if high < margin {
                Standing::Pass
            } else {
                Standing::Undecided
            },
        }
    }

    /// Classified responses the error check plans for when the baseline's
    /// error rate is `rate` and the variant gets `variant_share` of the
    /// classified responses (the baseline `baseline_share`): the first total
    /// at which equal variants, observed z(power) standard errors against
    /// the canary, would already pass — and at which a canary worse by twice
    /// the margin, observed z standard errors in its favour, would already fail.
    pub fn error_plan(&self, rate: f64, variant_share: f64, baseline_share: f64) -> u64 {
        let rate = rate.clamp(0.0, 0.5);
        let worse = (rate + 2.0 * self.max_error_increase).min(1.0);
        let shares = (variant_share, baseline_share);
        let passes =
            |total: u64| self.standing_at(rate, shares, total, rate, 1.0) == Standing::Pass;
        let fails =
            |total: u64| self.standing_at(rate, shares, total, worse, -1.0) == Standing::Fail;
        // 10% to spare: counts are whole numbers and the rate is estimated.
        (doubling_search(passes).max(doubling_search(fails)) as f64 * 1.1).ceil() as u64
    }

    /// Where the check would stand after `total` classified responses
    /// with the baseline at `rate` and the variant at `variant_rate`,
    /// observed z(power) standard errors `toward` the canary's harm (+1)
    /// or in its favour (−1): what a plan with that power expects.
    fn standing_at(
        &self,
        rate: f64,
        (variant_share, baseline_share): (f64, f64),
        total: u64,
        variant_rate: f64,
        toward: f64,
    ) -> Standing {
        let z = normal_quantile(self.power);
        let variant = (total as f64 * variant_share).max(1.0);
        let baseline = (total as f64 * baseline_share).max(1.0);
        let variant_var = variant_rate * (1.0 - variant_rate) / variant;
        let baseline_var = rate * (1.0 - rate) / baseline;
        let spread = (variant_var + baseline_var).sqrt();
        let weight = variant_var / (variant_var + baseline_var).max(f64::MIN_POSITIVE);
        let counts = ErrorCounts {
            variant_failed: ((variant_rate + toward * z * spread * weight).clamp(0.0, 1.0)
                * variant)
                .round() as u64,
            variant: variant as u64,
            baseline_failed: ((rate - toward * z * spread * (1.0 - weight)).clamp(0.0, 1.0)
                * baseline)
                .round() as u64,
            baseline: baseline as u64,
            unattributable: 0,
        };
        self.error_bounds(&counts).standing
    }

    /// What the error check decides within `total` classified responses
    /// at a baseline rate `rate`: (the largest increase it passes, the
    /// least it fails) with the plan's power, on the same approximation as
    /// [`HealthSpec::error_plan`]. None where it decides none.
    pub fn error_zone(
        &self,
        rate: f64,
        shares: (f64, f64),
        total: u64,
    ) -> (Option<f64>, Option<f64>) {
        let rate = rate.clamp(0.0, 0.5);
        let margin = self.max_error_increase;
        let search = |decides: &dyn Fn(f64) -> bool, low: f64, high: f64| {
            if !decides(high) {
                return None;
            }
            let (mut low, mut high) = (low, high);
            for _ in 0..30 {
                let middle = 0.5 * (low + high);
                if decides(middle) {
                    high = middle;
                } else {
                    low = middle;
                }
            }
            Some(high)
        };
        // Pass: the increase below the margin (distance e) that passes.
        let pass = search(
            &|e: f64| {
                let increase = (margin - e).max(-rate);
                self.standing_at(rate, shares, total, rate + increase, 1.0) == Standing::Pass
            },
            0.0,
            margin + rate,
        )
        .map(|e| margin - e);
        let fail = search(
            &|e: f64| {
                let worse = (rate + margin + e).min(1.0);
                self.standing_at(rate, shares, total, worse, -1.0) == Standing::Fail
            },
            0.0,
            1.0 - rate - margin,
        )
        .map(|e| margin + e);
        (pass, fail)
    }
}

/// The first n for which `holds(n)` (assumed monotone), by doubling and then
/// bisection; capped at 2^32.
pub fn doubling_search(holds: impl Fn(u64) -> bool) -> u64 {
    let mut high = 16u64;
    while !holds(high) {
        high *= 2;
        if high > 1 << 32 {
            return high;
        }
    }
    let mut low = high / 2;
    while high - low > 1 {
        let middle = (low + high) / 2;
        if holds(middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
    high
}

/// One bin of a variant's responses: sums, so that shards' blocks of the
/// same bin add up.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Block {
    pub count: u64,
    pub sum_ln_ms: f64,
    pub sum_ms: f64,
    /// Sums of squares, for the spread within a bin (absent, 0, in
    /// earlier versions' reports: the batch means alone are used then).
    #[serde(default)]
    pub sum_sq_ln_ms: f64,
    #[serde(default)]
    pub sum_sq_ms: f64,
}

impl Block {
    /// Adds another block of the same bin and variant (another shard's).
    pub fn merge(&mut self, other: &Block) {
        self.count += other.count;
        self.sum_ln_ms += other.sum_ln_ms;
        self.sum_ms += other.sum_ms;
        self.sum_sq_ln_ms += other.sum_sq_ln_ms;
        self.sum_sq_ms += other.sum_sq_ms;
    }

    pub fn add(&mut self, latency_ms: f64) {
        let ln = latency_ms.max(1e-3).ln();
        self.count += 1;
        self.sum_ln_ms += ln;
        self.sum_ms += latency_ms;
        self.sum_sq_ln_ms += ln * ln;
        self.sum_sq_ms += latency_ms * latency_ms;
    }

    /// The squared deviations from the block's mean, on the margin's scale.
    pub fn deviations(&self, margin: LatencyMargin) -> f64 {
        let (sum, squares) = match margin {
            LatencyMargin::Relative(_) => (self.sum_ln_ms, self.sum_sq_ln_ms),
            LatencyMargin::Absolute { .. } => (self.sum_ms, self.sum_sq_ms),
        };
        if self.count == 0 {
            return 0.0;
        }
        (squares - sum * sum / self.count as f64).max(0.0)
    }

    /// The block's mean on the margin's scale (log ms, or ms).
    pub fn mean(&self, margin: LatencyMargin) -> f64 {
        match margin {
            LatencyMargin::Relative(_) => self.sum_ln_ms / self.count as f64,
            LatencyMargin::Absolute { .. } => self.sum_ms / self.count as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> HealthSpec {
        HealthSpec {
            alpha: 0.01,
            power: 0.95,
            max_error_increase: 0.01,
            max_latency_increase: LatencyMargin::Relative(0.2),
            assumed_error_rate: 0.01,
        }
    }

    #[test]
    fn unattributable_failures_block_a_pass() {
        let clean = ErrorCounts {
            variant_failed: 0,
            variant: 5_000,
            baseline_failed: 0,
            baseline: 45_000,
            unattributable: 0,
        };
        assert_eq!(spec().error_bounds(&clean).standing, Standing::Pass);
        let timeouts = ErrorCounts {
            unattributable: 450,
            ..clean
        };
        let bounds = spec().error_bounds(&timeouts);
        assert_eq!(bounds.standing, Standing::Undecided, "{bounds:?}");
        assert!(bounds.high > 0.05);
    }

    #[test]
    fn a_clearly_worse_canary_fails() {
        let worse = ErrorCounts {
            variant_failed: 200,
            variant: 2_000,
            baseline_failed: 180,
            baseline: 18_000,
            unattributable: 0,
        };
        assert_eq!(spec().error_bounds(&worse).standing, Standing::Fail);
    }

    #[test]
    fn plans_grow_with_the_baseline_rate() {
        let at = |rate| spec().error_plan(rate, 0.1, 0.9);
        let (zero, half, five) = (at(0.0), at(0.005), at(0.05));
        assert!(zero < half && half < five, "{zero} {half} {five}");
        // Passing equal variants and failing a canary 2pp worse, with power 0.95.
        assert!((5_000..100_000).contains(&zero), "{zero}");
    }
}
