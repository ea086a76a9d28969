//! Canary health against the baseline, from the recorder's per-class counts
//! and latency histograms: the error-rate and latency checks.
//!
//! Each check has three outcomes. *Fail*: the canary is worse with
//! significance (one-sided test, Holm-adjusted across every health test of
//! the run) **and** by more than the allowed margin. *Pass*: the one-sided
//! (1 − α) upper bound of the increase is below the margin (non-inferiority;
//! passing needs every test to pass, an intersection–union test, which needs
//! no multiplicity correction — Berger 1982). *Inconclusive*: neither.
use serde_json::json;

use crate::record::{ClassStats, Recorder};
use crate::report::{format_p, Check, Interval, Verdict};
use crate::stats::binomial::normal_quantile;
use crate::stats::health::{
    fisher_greater, groups_of, hodges_lehmann, holm, mann_whitney_greater, newcombe_difference,
};

/// Never fail a latency increase below this: loopback and timer jitter.
pub const LATENCY_FLOOR_MS: f64 = 1.0;

/// The largest acceptable latency increase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyMargin {
    /// A fraction of the baseline's median (never under [`LATENCY_FLOOR_MS`]).
    Relative(f64),
    Absolute {
        ms: f64,
    },
}

impl LatencyMargin {
    fn ms(self, baseline_median_ms: f64) -> f64 {
        match self {
            LatencyMargin::Relative(fraction) => {
                (fraction * baseline_median_ms).max(LATENCY_FLOOR_MS)
            }
            LatencyMargin::Absolute { ms } => ms,
        }
    }

    fn describe(self) -> String {
        match self {
            LatencyMargin::Relative(fraction) => format!(
                "{}% of the baseline median (at least {LATENCY_FLOOR_MS}ms)",
                crate::plan::trim_float(fraction * 100.0)
            ),
            LatencyMargin::Absolute { ms } => format!("{}ms", crate::plan::trim_float(ms)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthSpec {
    pub alpha: f64,
    pub max_error_increase: f64,
    pub max_latency_increase: LatencyMargin,
}

impl HealthSpec {
    /// Responses a variant needs so that, with no errors on either side, its
    /// error-rate increase is shown below the margin: the Wilson upper bound
    /// of 0/n at one-sided level α, z²/(n + z²), under the margin — with 10%
    /// to spare, so that a handful of baseline errors does not tip it.
    pub fn responses_needed(&self) -> u64 {
        let z = normal_quantile(1.0 - self.alpha);
        let margin = self.max_error_increase;
        (1.1 * z * z * (1.0 - margin) / margin).ceil() as u64
    }
}

/// One variant compared with the baseline.
pub struct Pair<'a> {
    pub name: &'a str,
    pub baseline_name: &'a str,
    pub variant: &'a ClassStats,
    pub baseline: &'a ClassStats,
}

fn pct(value: f64) -> String {
    format!("{:.2}%", value * 100.0)
}

fn pp(value: f64) -> String {
    format!("{:+.2}pp", value * 100.0)
}

fn quantiles_ms(stats: &ClassStats) -> serde_json::Value {
    let ms = |q: f64| stats.latency_us.value_at_quantile(q) as f64 / 1000.0;
    if stats.latency_us.is_empty() {
        return json!(null);
    }
    json!({ "p50": ms(0.5), "p95": ms(0.95), "p99": ms(0.99) })
}

/// The health checks for every pair, Holm-adjusted together.
pub fn checks(spec: &HealthSpec, pairs: &[Pair<'_>]) -> Vec<Check> {
    let confidence = 1.0 - 2.0 * spec.alpha;
    let mut p_values = Vec::new();
    struct Pending {
        check: Check,
        raw_p: Option<f64>,
        worse_by_more: bool,
        below_margin: bool,
    }
    let mut pending: Vec<Pending> = Vec::new();
    for pair in pairs {
        let (v, b) = (pair.variant, pair.baseline);
        let name = format!("errors {} vs {}", pair.name, pair.baseline_name);
        // Error rate.
        if v.count == 0 || b.count == 0 {
            pending.push(Pending {
                check: Check::new(
                    name,
                    "health.errors",
                    Verdict::Inconclusive,
                    json!({ "responses": v.count, "baseline_responses": b.count }),
                    json!({ "max_increase": spec.max_error_increase }),
                    format!(
                        "no responses from {}: nothing to compare",
                        if v.count == 0 {
                            pair.name
                        } else {
                            pair.baseline_name
                        }
                    ),
                ),
                raw_p: None,
                worse_by_more: false,
                below_margin: false,
            });
        } else {
            let rate_v = v.failed as f64 / v.count as f64;
            let rate_b = b.failed as f64 / b.count as f64;
            let increase = rate_v - rate_b;
            let p = fisher_greater(v.failed, v.count, b.failed, b.count);
            let (low, high) = newcombe_difference(v.failed, v.count, b.failed, b.count, confidence);
            let margin = spec.max_error_increase;
            let mut check = Check::new(
                name,
                "health.errors",
                Verdict::Inconclusive,
                json!({
                    "error_rate": rate_v, "errors": v.failed, "responses": v.count,
                    "baseline_error_rate": rate_b, "baseline_errors": b.failed,
                    "baseline_responses": b.count, "increase": increase,
                    "smallest_increase_ruled_out": high,
                }),
                json!({ "max_increase": margin }),
                format!(
                    "{} errors {} ({}/{}) vs {} {} ({}/{}): increase {}, {} upper bound {}, allowed {}",
                    pair.name,
                    pct(rate_v),
                    v.failed,
                    v.count,
                    pair.baseline_name,
                    pct(rate_b),
                    b.failed,
                    b.count,
                    pp(increase),
                    super::level(1.0 - spec.alpha),
                    pp(high),
                    pp(margin)
                ),
            );
            check.interval = Some(Interval {
                low,
                high,
                confidence,
            });
            check.used = Some(v.count);
            pending.push(Pending {
                check,
                raw_p: Some(p),
                worse_by_more: increase > margin,
                below_margin: high < margin,
            });
        }
        // Latency.
        let name = format!("latency {} vs {}", pair.name, pair.baseline_name);
        let (x, y) = (groups_of(&v.latency_us), groups_of(&b.latency_us));
        let shift = hodges_lehmann(&x, &y, confidence);
        match shift {
            None => pending.push(Pending {
                check: Check::new(
                    name,
                    "health.latency",
                    Verdict::Inconclusive,
                    json!({ "responses": v.count, "baseline_responses": b.count }),
                    json!({ "max_increase": spec.max_latency_increase.describe() }),
                    "no latencies on one side: nothing to compare".to_string(),
                ),
                raw_p: None,
                worse_by_more: false,
                below_margin: false,
            }),
            Some(shift) => {
                let test = mann_whitney_greater(&x, &y);
                let baseline_median_ms = b.latency_us.value_at_quantile(0.5) as f64 / 1000.0;
                let margin_ms = spec.max_latency_increase.ms(baseline_median_ms);
                let (estimate_ms, low_ms, high_ms) = (
                    shift.estimate / 1000.0,
                    shift.low / 1000.0,
                    shift.high / 1000.0,
                );
                let mut check = Check::new(
                    name,
                    "health.latency",
                    Verdict::Inconclusive,
                    json!({
                        "variant_ms": quantiles_ms(v), "baseline_ms": quantiles_ms(b),
                        "shift_ms": estimate_ms, "mann_whitney_u": test.u, "z": test.z,
                        "smallest_increase_ruled_out_ms": high_ms,
                    }),
                    json!({ "max_increase_ms": margin_ms, "rule": spec.max_latency_increase.describe() }),
                    format!(
                        "{} is {:+.2}ms vs {} (Hodges–Lehmann; median {:.2}ms), {} upper bound {:+.2}ms, allowed +{:.2}ms",
                        pair.name,
                        estimate_ms,
                        pair.baseline_name,
                        baseline_median_ms,
                        super::level(1.0 - spec.alpha),
                        high_ms,
                        margin_ms
                    ),
                );
                check.interval = Some(Interval {
                    low: low_ms,
                    high: high_ms,
                    confidence,
                });
                check.used = Some(v.count);
                pending.push(Pending {
                    check,
                    raw_p: Some(test.p_greater),
                    worse_by_more: estimate_ms > margin_ms,
                    below_margin: high_ms < margin_ms,
                });
            }
        }
    }
    for entry in &pending {
        if let Some(p) = entry.raw_p {
            p_values.push(p);
        }
    }
    let adjusted = holm(&p_values);
    let mut next = adjusted.iter();
    pending
        .into_iter()
        .map(|mut entry| {
            if entry.raw_p.is_some() {
                let p = *next.next().expect("one adjusted p per raw p");
                entry.check.p_value = Some(p);
                let (verdict, lead) = if p < spec.alpha && entry.worse_by_more {
                    (Verdict::Fail, "worse beyond the margin")
                } else if entry.below_margin {
                    (Verdict::Pass, "within the margin")
                } else if p < spec.alpha {
                    (
                        Verdict::Inconclusive,
                        "significantly worse, by less than the margin so far",
                    )
                } else {
                    (
                        Verdict::Inconclusive,
                        "not enough responses to rule out the margin",
                    )
                };
                entry.check.verdict = verdict;
                entry.check.reason = format!(
                    "{lead}: {}; one-sided p {} (Holm)",
                    entry.check.reason,
                    format_p(p)
                );
            }
            entry.check
        })
        .collect()
}

/// Pairs every non-baseline variant with the baseline, by class index.
pub fn pairs<'a>(
    recorder: &'a Recorder,
    variants: &[(u16, &'a str)],
    baseline: (u16, &'a str),
) -> Vec<Pair<'a>> {
    variants
        .iter()
        .filter(|(class, _)| *class != baseline.0)
        .map(|&(class, name)| Pair {
            name,
            baseline_name: baseline.1,
            variant: &recorder.classes[class as usize],
            baseline: &recorder.classes[baseline.0 as usize],
        })
        .collect()
}
