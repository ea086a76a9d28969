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
//! Latency. Responses are not independent (queues, GC pauses, shared
//! backends), so individual responses are not compared. Each second of the
//! run is a block: the difference of the variants' mean log latency in that
//! second (the log of the ratio of their geometric means; for an absolute
//! margin, of their mean latencies in ms). Drift both variants share cancels
//! in the difference; what remains is treated as a stationary series whose
//! variance is inflated by its lag-1 autocorrelation ρ̂ — (1+ρ̂)/(1−ρ̂), the
//! long-run variance of an AR(1) — and bounded with the Gaussian-mixture
//! confidence sequence ([`normal_mixture_radius`]). It is asymptotic: no
//! latency decision before [`MIN_SECONDS`] blocks.
use crate::stats::binomial::normal_quantile;
use crate::stats::confseq::{normal_mixture_radius, tuned_rho2, BernoulliCs, Mixture};

/// Fewest one-second blocks before a latency decision (the bound is a CLT one).
pub const MIN_SECONDS: usize = 10;
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
        let z = normal_quantile(self.power);
        let rate = rate.clamp(0.0, 0.5);
        let worse = (rate + 2.0 * self.max_error_increase).min(1.0);
        let standing_at = |total: u64, variant_rate: f64, toward: f64| {
            let variant = (total as f64 * variant_share).max(1.0);
            let baseline = (total as f64 * baseline_share).max(1.0);
            let spread = (variant_rate * (1.0 - variant_rate) / variant
                + rate * (1.0 - rate) / baseline)
                .sqrt();
            let weight = (variant_rate * (1.0 - variant_rate) / variant)
                / (variant_rate * (1.0 - variant_rate) / variant + rate * (1.0 - rate) / baseline)
                    .max(f64::MIN_POSITIVE);
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
        };
        let passes = |total: u64| standing_at(total, rate, 1.0) == Standing::Pass;
        let fails = |total: u64| standing_at(total, worse, -1.0) == Standing::Fail;
        // 10% to spare: counts are whole numbers and the rate is estimated.
        (doubling_search(passes).max(doubling_search(fails)) as f64 * 1.1).ceil() as u64
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

/// One second of a variant's responses: sums, so that shards' blocks of
/// the same second add up.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Block {
    pub count: u64,
    pub sum_ln_ms: f64,
    pub sum_ms: f64,
}

impl Block {
    /// Adds another block of the same second and variant (another shard's).
    pub fn merge(&mut self, other: &Block) {
        self.count += other.count;
        self.sum_ln_ms += other.sum_ln_ms;
        self.sum_ms += other.sum_ms;
    }

    pub fn add(&mut self, latency_ms: f64) {
        self.count += 1;
        self.sum_ln_ms += latency_ms.max(1e-3).ln();
        self.sum_ms += latency_ms;
    }

    fn mean(&self, margin: LatencyMargin) -> f64 {
        match margin {
            LatencyMargin::Relative(_) => self.sum_ln_ms / self.count as f64,
            LatencyMargin::Absolute { .. } => self.sum_ms / self.count as f64,
        }
    }
}

/// Bounds on the latency increase, on the block scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyBounds {
    pub increase: f64,
    pub low: f64,
    pub high: f64,
    /// Seconds compared, their spread, and the lag-1 autocorrelation used.
    pub seconds: usize,
    pub spread: f64,
    pub autocorrelation: f64,
    pub standing: Standing,
}

impl HealthSpec {
    /// The latency check over per-second blocks `(variant, baseline)`;
    /// `t_star` is the number of seconds the boundary is tuned for.
    pub fn latency_bounds(&self, blocks: &[(Block, Block)], t_star: f64) -> Option<LatencyBounds> {
        let margin = self.max_latency_increase;
        let differences: Vec<f64> = blocks
            .iter()
            .filter(|(variant, baseline)| variant.count > 0 && baseline.count > 0)
            .map(|(variant, baseline)| variant.mean(margin) - baseline.mean(margin))
            .collect();
        let seconds = differences.len();
        if seconds < 2 {
            return None;
        }
        let (mean, spread, autocorrelation) = block_moments(&differences);
        let inflated = spread * ((1.0 + autocorrelation) / (1.0 - autocorrelation)).sqrt();
        let radius = normal_mixture_radius(
            seconds as f64,
            inflated,
            self.alpha,
            tuned_rho2(t_star, self.alpha),
        );
        let limit = margin.on_block_scale();
        let (low, high) = (mean - radius, mean + radius);
        Some(LatencyBounds {
            increase: mean,
            low,
            high,
            seconds,
            spread: inflated,
            autocorrelation,
            standing: if seconds < MIN_SECONDS {
                Standing::Undecided
            } else if low > limit {
                Standing::Fail
            } else if high < limit {
                Standing::Pass
            } else {
                Standing::Undecided
            },
        })
    }

    /// Seconds the latency check plans for, given the blocks' (inflated)
    /// spread: the first t at which an observed increase of z(power)
    /// standard errors above zero would already pass, and one of twice the
    /// margin, z standard errors lower, would already fail; at least
    /// [`MIN_SECONDS`].
    pub fn latency_plan(&self, spread: f64) -> u64 {
        let z = normal_quantile(self.power);
        let limit = self.max_latency_increase.on_block_scale();
        let radius =
            |t: f64| normal_mixture_radius(t, spread, self.alpha, tuned_rho2(t, self.alpha));
        let decided = |t: u64| {
            let t = t as f64;
            let wobble = z * spread / t.sqrt();
            wobble + radius(t) < limit && 2.0 * limit - wobble - radius(t) > limit
        };
        doubling_search(decided).max(MIN_SECONDS as u64)
    }
}

/// Mean, standard deviation (n − 1) and lag-1 autocorrelation (clamped to
/// [0, 0.9]: a negative one is not used to narrow the bound, and one near 1
/// means the blocks are not enough to say anything) of a series.
pub fn block_moments(values: &[f64]) -> (f64, f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let lagged: f64 = values
        .windows(2)
        .map(|pair| (pair[0] - mean) * (pair[1] - mean))
        .sum::<f64>()
        / n;
    let biased = variance * (n - 1.0) / n;
    let autocorrelation = if biased > 0.0 {
        (lagged / biased).clamp(0.0, 0.9)
    } else {
        0.0
    };
    (mean, variance.sqrt(), autocorrelation)
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

    #[test]
    fn moments_of_a_series() {
        let (mean, spread, rho) = block_moments(&[1.0, 2.0, 3.0, 4.0]);
        assert!((mean - 2.5).abs() < 1e-12);
        assert!((spread - 1.2909944487358056).abs() < 1e-12);
        assert!(rho > 0.0 && rho <= 0.9);
    }
}
