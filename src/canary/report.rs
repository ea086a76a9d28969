//! The canary's report: its checks (share, unclassified, independence,
//! health) and its section, from what the watch saw.
use indexmap::IndexMap;
use serde_json::json;

use crate::canary::health;
use crate::canary::health::{HealthSpec, LatencyMargin, Standing};
use crate::canary::plan::*;
use crate::canary::split::{unclassified_check, Outcome, Rule};
use crate::canary::watch::{self, VariantHealth, Watch};
use crate::engine::EndReason;
use crate::record::Recorder;
use crate::report;
use crate::report::{CanarySection, Check, Interval, Report, Verdict};

pub fn build_report(
    plan: &CanaryPlan,
    watch: &mut Watch<'_>,
    recorder: &Recorder,
    info: &crate::engine::RunInfo,
) -> Report {
    let mut report = Report::for_load(&plan.load, recorder, info);
    report.command = "canary".to_string();
    let dependence = watch.dependence.finding();
    let mut checks = share_checks(plan, watch, dependence.is_some());
    checks.push(unclassified_check(
        watch.unattributable,
        watch.classified + watch.unattributable,
        plan.max_unclassified,
    ));
    checks.push(independence_check(watch, dependence.as_deref()));
    if plan.health.is_some() {
        checks.extend(health_checks(plan, watch, dependence.is_some()));
    }
    let (verdict, deciding) = report::combine(&checks);
    let deciding_reason = deciding.map(|check| format!("{}: {}", check.name, check.reason));
    match (&info.end, report.verdict) {
        (_, Verdict::Error) => {}
        (EndReason::Interrupted, _) => {
            report.verdict = Verdict::Inconclusive;
            report.reason = format!(
                "interrupted before the checks were decided: partial results{}",
                deciding_reason
                    .map(|why| format!("; {why}"))
                    .unwrap_or_default()
            );
        }
        _ => {
            report.verdict = verdict;
            report.reason = match &dependence {
                // The one finding that voids every other check: say it first.
                Some(finding) => format!(
                    "split independence: {finding}; the checks assume a random split per request, so no verdict is given"
                ),
                None => deciding_reason
                    .unwrap_or_else(|| format!("all {} checks passed", checks.len())),
            };
        }
    }
    report.exit_code = report.verdict.exit_code();
    report.checks = checks;
    report.canary = Some(canary_section(plan, watch));
    report.overrule_local_exhaustion();
    report
}

fn canary_section(plan: &CanaryPlan, watch: &Watch<'_>) -> CanarySection {
    CanarySection {
        expect: plan
            .variants
            .iter()
            .map(|variant| (variant.name.clone(), variant.share))
            .collect::<IndexMap<_, _>>(),
        baseline: plan.baseline.map(|index| plan.variants[index].name.clone()),
        alpha: plan.alpha,
        power: plan.power,
        split_fixed_horizon: plan.tost_size,
        split_expected_sequential: plan.expected_sequential,
        planned_requests: watch.planned,
        max_requests: plan.max_requests,
        classified: watch.classified,
        unclassified: watch.unattributable,
        max_unclassified: Some(plan.max_unclassified),
        tolerance: plan
            .variants
            .iter()
            .filter_map(|variant| {
                let test = &watch.split.tests[variant.test?];
                Some((variant.name.clone(), test.expectation.tolerance))
            })
            .collect(),
        interval_kind: Some(INTERVAL_KIND.to_string()),
        split_horizon: Some(plan.split.horizon()),
        initial_planned_requests: Some(plan.planned_requests),
        assumed_baseline_error_rate: plan.health.map(|spec| spec.assumed_error_rate),
        observed_baseline_error_rate: watch.observed_baseline_error_rate,
        stopped_because: watch.stopped.clone(),
        connections: Some(watch.dependence.connections as u64),
        connection_dispersion_p: watch.dependence.by_connection.map(|d| d.2),
        second_dispersion_p: watch.dependence.by_second.map(|d| d.2),
    }
}

/// How the share intervals are made, for reports.
pub const INTERVAL_KIND: &str =
    "confidence sequence (beta-binomial mixture; valid at any stopping time)";

/// One check per tested share.
/// Long because the reason is the check: the share, the band, the interval
/// and how it was decided are written out from the test's one decision.
fn share_checks(plan: &CanaryPlan, watch: &mut Watch<'_>, dependent: bool) -> Vec<Check> {
    let mut checks = Vec::new();
    for variant in &plan.variants {
        let Some(index) = variant.test else { continue };
        let test = &mut watch.split.tests[index];
        let decision = test.finish();
        let e = test.expectation.clone();
        let (hits, trials) = test.counts();
        let observed = if trials == 0 {
            0.0
        } else {
            hits as f64 / trials as f64
        };
        let confidence = 1.0 - test.alpha();
        let (low, high) = test.interval().unwrap_or((0.0, 1.0));
        let (band_low, band_high) = e.band();
        let how = match (decision.rule, decision.verdict) {
            (Rule::Sequence, Outcome::Pass) => {
                format!("inside the band after {} responses", decision.trials)
            }
            (Rule::Sequence, _) => format!("outside the band after {} responses", decision.trials),
            (Rule::Horizon, _) => format!(
                "still overlapping the band at the planned {} responses",
                decision.trials
            ),
            (Rule::EndOfRun, _) => format!(
                "still overlapping the band when the run ended ({} responses)",
                decision.trials
            ),
        };
        let mut verdict = match decision.verdict {
            Outcome::Pass => Verdict::Pass,
            Outcome::Fail => Verdict::Fail,
            Outcome::Inconclusive => Verdict::Inconclusive,
        };
        let mut reason = format!(
            "{} got {} ({hits}/{trials}), expected {} (band {}–{}); {} confidence sequence {}–{}: {how}",
            variant.name,
            percent(observed),
            percent(e.share),
            percent(band_low),
            percent(band_high),
            level(confidence),
            percent(low),
            percent(high),
        );
        if let Some(source) = &variant.source {
            reason.push_str(&format!(" (expected share declared by {source})"));
        }
        if watch.unattributable > 0 {
            reason.push_str(&format!(
                " ({} unattributable responses counted both ways)",
                watch.unattributable
            ));
        }
        if dependent {
            verdict = Verdict::Inconclusive;
            reason.push_str(
                " — but the responses are not independent per request (see split independence)",
            );
        }
        let mut check = Check::new(
            format!("share {}", variant.name),
            "split.share",
            verdict,
            json!({ "share": observed, "responses": hits, "of": trials,
                    "rule": format!("{:?}", decision.rule).to_lowercase(),
                    "unattributable": watch.unattributable }),
            json!({ "share": e.share, "tolerance": e.tolerance, "band": [band_low, band_high] }),
            reason,
        );
        check.interval = Some(Interval {
            low,
            high,
            confidence,
            kind: Some(INTERVAL_KIND.to_string()),
        });
        check.p_value = Some(test.always_valid_p());
        check.planned = Some(test.horizon());
        check.used = Some(decision.trials);
        checks.push(check);
    }
    checks
}

/// Whether the responses look independent per request (per connection, per second).
fn independence_check(watch: &Watch<'_>, finding: Option<&str>) -> Check {
    let dependence = &watch.dependence;
    let p = |test: Option<(f64, usize, f64)>| test.map(|(_, _, p)| p);
    let check = Check::new(
        "split independence",
        "split.independence",
        if finding.is_some() {
            Verdict::Inconclusive
        } else {
            Verdict::Pass
        },
        json!({ "connections": dependence.connections,
                "by_connection_p": p(dependence.by_connection),
                "by_second_p": p(dependence.by_second) }),
        json!({ "assumption": "each request is assigned to a variant independently", "min_p": watch::DEPENDENCE_P }),
        match finding {
            Some(finding) => format!("{finding}: the checks assume a random split per request, so no verdict is given"),
            None => format!(
                "no sign that the split depends on the connection ({} connections{}) or the second{}",
                dependence.connections,
                p(dependence.by_connection).map_or(String::new(), |p| format!(", p = {}", crate::units::format_p(p))),
                p(dependence.by_second).map_or(String::new(), |p| format!(" (p = {})", crate::units::format_p(p)))
            ),
        },
    );
    // Its p-values are looked at every second: not always-valid, so they
    // stay in the reason and the observed values, not the p-value column.
    check
}

/// The error-rate and latency checks, per compared variant.
fn health_checks(plan: &CanaryPlan, watch: &Watch<'_>, dependent: bool) -> Vec<Check> {
    let (Some(spec), Some(baseline)) = (&plan.health, plan.baseline) else {
        return Vec::new();
    };
    let compared = Compared {
        plan,
        watch,
        spec,
        baseline,
        dependent,
    };
    watch
        .health
        .iter()
        .flat_map(|health| [compared.errors(health), compared.latency(health)])
        .collect()
}

/// What the health checks of one run share: the plan, the watch, the spec
/// and the baseline every other variant is compared with.
struct Compared<'a> {
    plan: &'a CanaryPlan,
    watch: &'a Watch<'a>,
    spec: &'a HealthSpec,
    baseline: usize,
    dependent: bool,
}

fn standing_verdict(standing: Standing) -> Verdict {
    match standing {
        Standing::Pass => Verdict::Pass,
        Standing::Fail => Verdict::Fail,
        Standing::Undecided => Verdict::Inconclusive,
    }
}

impl Compared<'_> {
    /// The error-rate check of one variant against the baseline.
    fn errors(&self, health: &VariantHealth) -> Check {
        let (plan, watch, spec, baseline) = (self.plan, self.watch, self.spec, self.baseline);
        let dependent = self.dependent;
        let baseline_name = &plan.variants[baseline].name;
        let confidence = 1.0 - spec.alpha;
        let name = &plan.variants[health.variant].name;
        let count = watch.counts[health.variant];
        let failed = watch.failed[health.variant];
        let base_count = watch.counts[baseline];
        let base_failed = watch.failed[baseline];
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
                    watch.unattributable,
                    points(spec.max_error_increase),
                    match bounds.standing {
                        Standing::Pass => ": within the margin".to_string(),
                        Standing::Fail => ": worse than the margin".to_string(),
                        Standing::Undecided if watch.unattributable > 0 && bounds.low <= spec.max_error_increase && bounds.high - bounds.increase > 2.0 * spec.max_error_increase =>
                            format!(": undecided — {} responses no variant claims could be {name}'s failures", watch.unattributable),
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
                    "unattributable": watch.unattributable,
                    "increase": health.errors.map(|b| b.increase) }),
            json!({ "max_increase": spec.max_error_increase,
                    "assumed_baseline_rate": spec.assumed_error_rate,
                    "observed_baseline_rate": watch.observed_baseline_error_rate }),
            reason,
        );
        check.interval = interval;
        check.planned = Some(watch.planned);
        check.used = Some(count + base_count);
        check
    }

    /// The latency check of one variant against the baseline.
    fn latency(&self, health: &VariantHealth) -> Check {
        let (plan, spec, baseline) = (self.plan, self.spec, self.baseline);
        let dependent = self.dependent;
        let name = &plan.variants[health.variant].name;
        let baseline_name = &plan.variants[baseline].name;
        let confidence = 1.0 - spec.alpha;
        let margin = spec.max_latency_increase;
        let (verdict, reason, interval) = match health.latency {
            Some(bounds) => (
                standing_verdict(bounds.standing),
                format!(
                    "{name} vs {baseline_name}: {} over {} one-second blocks, {} bounds {} to {} (spread inflated for lag-1 autocorrelation {:.2}), margin {}{}",
                    margin.show(bounds.increase),
                    bounds.seconds,
                    level(confidence),
                    margin.show(bounds.low),
                    margin.show(bounds.high),
                    bounds.autocorrelation,
                    margin.describe(),
                    match bounds.standing {
                        Standing::Pass => ": within the margin",
                        Standing::Fail => ": slower than the margin",
                        Standing::Undecided if bounds.seconds < health::MIN_SECONDS => ": too few seconds to decide",
                        Standing::Undecided => ": undecided within the planned sample",
                    }
                ),
                Some(Interval { low: bounds.low, high: bounds.high, confidence, kind: Some("Gaussian-mixture confidence sequence over per-second blocks".to_string()) }),
            ),
            None => (Verdict::Inconclusive, format!("fewer than 2 seconds with both {name} and {baseline_name} responses"), None),
        };
        let mut check = Check::new(
            format!("latency {name} vs {baseline_name}"),
            "health.latency",
            if dependent {
                Verdict::Inconclusive
            } else {
                verdict
            },
            json!({ "increase": health.latency.map(|b| b.increase), "seconds": health.latency.map(|b| b.seconds),
                    "scale": match margin { LatencyMargin::Relative(_) => "log ratio of geometric means", LatencyMargin::Absolute { .. } => "ms difference of means" },
                    "autocorrelation": health.latency.map(|b| b.autocorrelation) }),
            json!({ "max_increase": margin.on_block_scale(), "margin": margin.describe() }),
            reason,
        );
        check.interval = interval;
        check.used = health.latency.map(|b| b.seconds as u64);
        check
    }
}

/// A difference of rates in percentage points: +0.42pp.
fn points(value: f64) -> String {
    format!("{:+.2}pp", value * 100.0)
}
