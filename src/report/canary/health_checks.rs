//! The canary's health checks against the baseline: errors and latency,
//! each a comparison decided by its confidence sequence, and what a
//! merge of shards gives them.
use serde_json::json;

use crate::canary::drops::{DropDesign, Finding};
use crate::canary::health::{HealthSpec, LatencyMargin, Standing};
use crate::canary::latency::{LatencyBounds, LatencyDesign};
use crate::canary::plan::*;
use crate::canary::watch::{VariantHealth, Watch};
use crate::report::{Check, Interval, Verdict};

/// The error-rate, latency and drop checks, per compared variant.
pub(super) fn health_checks(
    plan: &CanaryPlan,
    watch: &Watch<'_>,
    dependent: bool,
    split_failed: bool,
) -> Vec<Check> {
    let (Some(spec), Some(baseline)) = (&plan.health, plan.baseline) else {
        return Vec::new();
    };
    let compared = Compared {
        names: plan.variants.iter().map(|v| v.name.as_str()).collect(),
        counts: &watch.counts,
        failed: &watch.failed,
        unattributable: watch.unattributable,
        observed_baseline_error_rate: watch.observed_baseline_error_rate,
        planned: watch.planned,
        spec,
        baseline,
        dependent,
        latency: plan.latency.as_ref(),
        drops: &plan.drops,
        split_failed,
    };
    compared.checks(&watch.health)
}

/// What the health checks of one run share: the variants' names and
/// counts (a watch's, or merged shards'), the spec and the baseline every
/// other variant is compared with.
pub(super) struct Compared<'a> {
    pub(super) names: Vec<&'a str>,
    pub(super) counts: &'a [u64],
    pub(super) failed: &'a [u64],
    pub(super) unattributable: u64,
    pub(super) observed_baseline_error_rate: Option<f64>,
    pub(super) planned: u64,
    pub(super) spec: &'a HealthSpec,
    pub(super) baseline: usize,
    pub(super) dependent: bool,
    /// The latency check's design (a live run's; none for merged shards).
    pub(super) latency: Option<&'a LatencyDesign>,
    /// The drop tests' designs (a live run's; none for merged shards).
    pub(super) drops: &'a [(usize, DropDesign)],
    /// A share check failed: the drops cannot be attributed.
    pub(super) split_failed: bool,
}

fn standing_verdict(standing: Standing) -> Verdict {
    match standing {
        Standing::Pass => Verdict::Pass,
        Standing::Fail => Verdict::Fail,
        Standing::Undecided => Verdict::Inconclusive,
    }
}

impl Compared<'_> {
    pub(super) fn checks(&self, health: &[VariantHealth]) -> Vec<Check> {
        health
            .iter()
            .flat_map(|health| {
                let mut checks = vec![self.errors(health), self.latency(health)];
                checks.extend(self.drops(health));
                checks
            })
            .collect()
    }

    /// The drop check of one variant against the baseline.
    fn drops(&self, health: &VariantHealth) -> Option<Check> {
        let drops = health.drops?;
        let name = self.names[health.variant];
        let baseline_name = self.names[self.baseline];
        let design = self
            .drops
            .iter()
            .find(|(variant, _)| *variant == health.variant)
            .map(|(_, design)| design);
        let pair = drops.variant + drops.baseline;
        let share = if pair == 0 {
            0.0
        } else {
            drops.variant as f64 / pair as f64
        };
        let expected = drops.variant as f64 + drops.deficit;
        let counted = format!(
            "{name} answered {} of its and {baseline_name}'s responses ({}/{pair}) where its share of their requests is {}: {:.0} of its about {expected:.0} requests missing, with {} requests no variant answered",
            percent(share),
            drops.variant,
            percent(
                design.map_or(expected / (pair + drops.unanswered).max(1) as f64, |d| d.share)
            ),
            drops.deficit.max(0.0),
            drops.unanswered
        );
        let at = drops
            .look
            .map_or(String::new(), |(look, responses)| match design {
                Some(design) => format!(
                    " at look {look} of {} ({responses} responses)",
                    design.looks.len()
                ),
                None => " at the merged run's size".to_string(),
            });
        let assumption = "assumes the expected share is the gateway's real split";
        let (verdict, reason) = match drops.finding {
            _ if self.split_failed && drops.unanswered > 0 => (
                Verdict::Inconclusive,
                format!("{counted} — but the share check failed, so the expected share is not the gateway's split and the drops cannot be attributed"),
            ),
            Finding::NoneUnanswered => (
                Verdict::Pass,
                format!("every request got a variant's answer: no drops to attribute ({} and {} responses)", drops.variant, drops.baseline),
            ),
            Finding::NoSign => (
                Verdict::Pass,
                format!("{counted}: no sign {name} drops more than {baseline_name} (exact one-sided bound at α {}) · {assumption}", self.spec.alpha),
            ),
            Finding::Drops => (
                Verdict::Fail,
                format!("{counted}: {name} drops more of its requests than {baseline_name}{at} (exact one-sided bound at α {}) · {assumption}", self.spec.alpha),
            ),
            Finding::NotDrops => (
                Verdict::Inconclusive,
                format!("{counted}: the deficit is larger than the unanswered requests could hold{at}, so it is not drops — the split itself is off (see the share check)"),
            ),
        };
        let mut check = Check::new(
            format!("drops {name} vs {baseline_name}"),
            "health.drops",
            if self.dependent {
                Verdict::Inconclusive
            } else {
                verdict
            },
            json!({ "variant_responses": drops.variant, "baseline_responses": drops.baseline,
                    "unanswered": drops.unanswered, "deficit": drops.deficit, "share": share }),
            json!({ "share": design.map(|d| d.share), "assumption": assumption }),
            reason,
        );
        check.planned = design.map(|d| d.budget());
        check.used = Some(pair);
        Some(check)
    }

    /// The error-rate check of one variant against the baseline.
    fn errors(&self, health: &VariantHealth) -> Check {
        let (spec, baseline) = (self.spec, self.baseline);
        let dependent = self.dependent;
        let baseline_name = self.names[baseline];
        let confidence = 1.0 - spec.alpha;
        let name = self.names[health.variant];
        let count = self.counts[health.variant];
        let failed = self.failed[health.variant];
        let base_count = self.counts[baseline];
        let base_failed = self.failed[baseline];
        let rate = |f: u64, n: u64| if n == 0 { 0.0 } else { f as f64 / n as f64 };
        let (verdict, reason, interval) = match health.errors {
            Some(bounds) => (
                standing_verdict(bounds.standing),
                format!(
                    "{name} {} ({failed}/{count}) vs {baseline_name} {} ({base_failed}/{base_count}): increase {}, {} bounds {}–{} (upper bound with all {} unattributable responses as {name} errors), margin {}{}",
                    percent(rate(failed, count)),
                    percent(rate(base_failed, base_count)),
                    points(bounds.increase),
                    level(confidence),
                    points(bounds.low),
                    points(bounds.high),
                    self.unattributable,
                    points(spec.max_error_increase),
                    match bounds.standing {
                        Standing::Pass => ": within the margin".to_string(),
                        Standing::Fail => ": worse than the margin".to_string(),
                        Standing::Undecided if self.unattributable > 0 && bounds.low <= spec.max_error_increase && bounds.high - bounds.increase > 2.0 * spec.max_error_increase =>
                            format!(": undecided — {} responses no variant claims could be {name}'s failures", self.unattributable),
                        Standing::Undecided => ": undecided within the planned sample".to_string(),
                    }
                ),
                Some(Interval { low: bounds.low, high: bounds.high, confidence, kind: Some("difference of two confidence sequences (beta-binomial mixture)".to_string()) }),
            ),
            None => (Verdict::Inconclusive, format!("no {name} or {baseline_name} responses to compare"), None),
        };
        let mut check = Check::new(
            format!("errors {name} vs {baseline_name}"),
            "health.errors",
            if dependent {
                Verdict::Inconclusive
            } else {
                verdict
            },
            json!({ "variant_rate": rate(failed, count), "baseline_rate": rate(base_failed, base_count),
                    "variant_failed": failed, "variant_responses": count,
                    "baseline_failed": base_failed, "baseline_responses": base_count,
                    "unattributable": self.unattributable,
                    "increase": health.errors.map(|b| b.increase) }),
            json!({ "max_increase": spec.max_error_increase,
                    "assumed_baseline_rate": spec.assumed_error_rate,
                    "observed_baseline_rate": self.observed_baseline_error_rate }),
            reason,
        );
        check.interval = interval;
        check.planned = Some(self.planned);
        check.used = Some(count + base_count);
        check
    }

    /// The latency check of one variant against the baseline.
    fn latency(&self, health: &VariantHealth) -> Check {
        let (spec, baseline) = (self.spec, self.baseline);
        let dependent = self.dependent;
        let name = self.names[health.variant];
        let baseline_name = self.names[baseline];
        let confidence = 1.0 - 2.0 * spec.alpha;
        let margin = spec.max_latency_increase;
        let (verdict, reason, interval) = match health.latency {
            Some(bounds) => (
                standing_verdict(bounds.standing),
                self.latency_reason(name, baseline_name, &bounds),
                Some(Interval {
                    low: bounds.low,
                    high: bounds.high,
                    confidence,
                    kind: Some("D ± t·se: within-bin differences of the mean, batch-means standard error (the verdict uses the group-sequential bounds)".to_string()),
                }),
            ),
            None => (
                Verdict::Inconclusive,
                format!(
                    "fewer than {} bins of due time with both {name} and {baseline_name} responses: nothing to compare yet",
                    crate::canary::latency::MIN_BINS
                ),
                None,
            ),
        };
        let estimate = health.latency.map(|b| b.estimate);
        let mut check = Check::new(
            format!("latency {name} vs {baseline_name}"),
            "health.latency",
            if dependent {
                Verdict::Inconclusive
            } else {
                verdict
            },
            json!({ "increase": health.latency.map(|b| b.increase),
                    "standard_error": estimate.map(|e| e.standard_error),
                    "bins": estimate.map(|e| e.bins), "batches": estimate.map(|e| e.batches),
                    "variant_responses": estimate.map(|e| e.variant),
                    "baseline_responses": estimate.map(|e| e.baseline),
                    "scale": match margin { LatencyMargin::Relative(_) => "log ratio of geometric means", LatencyMargin::Absolute { .. } => "ms difference of means" } }),
            json!({ "max_increase": margin.on_block_scale(), "margin": margin.describe() }),
            reason,
        );
        check.interval = interval;
        check.planned = self.latency.map(|design| design.budget());
        check.used = estimate.map(|e| e.variant + e.baseline);
        check
    }

    /// Why the latency check stands where it does, and what it can tell.
    fn latency_reason(&self, name: &str, baseline_name: &str, bounds: &LatencyBounds) -> String {
        let margin = self.spec.max_latency_increase;
        let limit = margin.on_block_scale();
        let e = &bounds.estimate;
        let how = match (bounds.standing, bounds.look, self.latency) {
            (Standing::Pass, Some((look, at)), Some(design)) => format!(
                ": within the margin at look {look} of {} ({at} responses)",
                design.looks.len()
            ),
            (Standing::Fail, Some((look, at)), Some(design)) => format!(
                ": slower than the margin at look {look} of {} ({at} responses)",
                design.looks.len()
            ),
            (Standing::Pass, _, _) => ": within the margin".to_string(),
            (Standing::Fail, _, _) => ": slower than the margin".to_string(),
            (Standing::Undecided, _, Some(design)) => {
                let zone = design.zone(e.unit_spread());
                let distance = (e.increase - limit).abs().max(1e-9);
                let needed = (design.budget() as f64 * (zone / distance).powi(2)).ceil();
                format!(
                    ": undecided — the increase is within the zone of the margin this plan decides ({} to {}); about {needed:.0} responses would decide one this far from it",
                    margin.show(limit - zone),
                    margin.show(limit + zone)
                )
            }
            (Standing::Undecided, _, None) => ": undecided at the merged run's size".to_string(),
        };
        let zone = match (bounds.standing, self.latency) {
            (Standing::Undecided, _) | (_, None) => String::new(),
            (_, Some(design)) => {
                let zone = design.zone(e.unit_spread());
                format!(
                    " · at the spread measured this plan passes increases up to {} and fails from {} with power {}",
                    margin.show(limit - zone),
                    margin.show(limit + zone),
                    design.power
                )
            }
        };
        format!(
            "{name} vs {baseline_name}: {} ({}; within {} bins of due time holding both, {} and {} responses; batch-means spread over {} batches), {} interval {} to {}, margin {}{how}{zone}",
            margin.show(bounds.increase),
            match margin {
                LatencyMargin::Relative(_) => "ratio of geometric means",
                LatencyMargin::Absolute { .. } => "difference of means",
            },
            e.bins,
            e.variant,
            e.baseline,
            e.batches,
            level(1.0 - 2.0 * self.spec.alpha),
            margin.show(bounds.low),
            margin.show(bounds.high),
            margin.describe(),
        )
    }
}

/// A difference of rates in percentage points: +0.42pp.
fn points(value: f64) -> String {
    format!("{:+.2}pp", value * 100.0)
}
