//! `gateprobe canary`: is the split what it should be, and is the canary as
//! healthy as the baseline? The load engine sends the traffic; an observer
//! runs the sequential split test on every response and stops the load as
//! soon as every check has its evidence; the health checks run on the
//! recorder's counts and histograms at the end.
pub mod health;
pub mod split;

use anyhow::Result;
use indexmap::IndexMap;
use serde_json::json;

use crate::cli::CanaryArgs;
use crate::engine::{command, EndReason, Observer, Verdict as Next};
use crate::plan::{self, LoadPlan, UsageError};
use crate::record::Recorder;
use crate::report::{self, CanarySection, Check, Interval, Report, Verdict};
use crate::sample::{Outcome, Sample};
use crate::stats::binomial::{chi_square_goodness_of_fit, clopper_pearson};
use crate::stats::sprt::Equivalence;
use crate::units;
use health::{HealthSpec, LatencyMargin};
use split::{Expectation, Rule, Split, State};

/// A class the split is about.
#[derive(Debug, Clone)]
pub struct Variant {
    pub name: String,
    pub class: u16,
    pub share: f64,
    /// Index of its share test in the split, if tested.
    pub test: Option<usize>,
}

/// Everything `canary` decided before sending.
pub struct CanaryPlan {
    pub load: LoadPlan,
    pub variants: Vec<Variant>,
    pub baseline: Option<usize>,
    pub split: Split,
    pub alpha: f64,
    pub power: f64,
    pub max_unclassified: f64,
    pub health: Option<HealthSpec>,
    /// Responses each non-baseline variant needs for the health checks.
    pub health_needs: Vec<(u16, u64)>,
    pub planned_requests: u64,
    pub max_requests: u64,
    pub expected_sequential: f64,
    pub notes: Vec<String>,
}

fn usage<T>(message: String) -> Result<T, UsageError> {
    Err(UsageError(message))
}

fn open_unit(
    text: &str,
    flag: &str,
    low: f64,
    high: f64,
    example: &str,
) -> Result<f64, UsageError> {
    match text.trim().parse::<f64>() {
        Ok(value) if value > low && value < high => Ok(value),
        _ => usage(format!(
            "{flag} {text}: expected a number between {low} and {high} (exclusive), e.g. {example}"
        )),
    }
}

/// A share as a percentage to two decimals, no trailing zeros: 10%, 9.18%, 0.5%.
pub fn percent(share: f64) -> String {
    format!("{}%", plan::trim_float((share * 1e4).round() / 1e2))
}

/// A confidence level for people: 98%, 99.8%, 99.93%.
pub fn level(confidence: f64) -> String {
    percent(confidence)
}

/// Builds the plan from the flags: one clear message per mistake.
/// The finest band a share is checked to (0.1pp): below it the fixed-horizon
/// size passes ten million responses, beyond any run this tool bounds.
pub const MIN_TOLERANCE: f64 = 0.001;

pub fn canary_plan(args: &CanaryArgs) -> Result<CanaryPlan, UsageError> {
    let alpha = open_unit(&args.alpha, "--alpha", 0.0, 0.5, "0.01")?;
    let power = open_unit(&args.power, "--power", 0.5, 1.0, "0.95")?;
    let max_unclassified = units::parse_percent(&args.max_unclassified)
        .or_else(|why| usage(format!("--max-unclassified: {why}")))?;
    let classifier = crate::classify::Classifier::parse(&args.load.classify).map_err(UsageError)?;
    let names = classifier.names();
    let known = names[..names.len() - 1].join(", ");

    // Expected shares.
    let mut variants: Vec<Variant> = Vec::new();
    for text in &args.expect {
        let Some((name, share_text)) = text.split_once('=') else {
            return usage(format!(
                "--expect '{text}': expected CLASS=SHARE, e.g. canary=10%"
            ));
        };
        let name = name.trim();
        let Some(class) = classifier
            .index_of(name)
            .filter(|_| name != crate::classify::UNMATCHED)
        else {
            return usage(format!(
                "--expect '{text}': no class '{name}'; the classes are {known} \
                 (define one with --classify {name}=MATCHER)"
            ));
        };
        if variants.iter().any(|variant| variant.name == name) {
            return usage(format!("--expect '{text}': '{name}' is expected twice"));
        }
        let share = units::parse_percent(share_text)
            .or_else(|why| usage(format!("--expect '{text}': {why}")))?;
        variants.push(Variant {
            name: name.to_string(),
            class,
            share,
            test: None,
        });
    }
    let total: f64 = variants.iter().map(|variant| variant.share).sum();
    if total > 1.0 + 1e-9 {
        return usage(format!(
            "--expect shares sum to {}: they may sum to at most 100%",
            percent(total)
        ));
    }
    let remainder = (1.0 - total).max(0.0);
    let full = remainder < 1e-9;

    // The baseline: named, the one class left, or the largest expected.
    let baseline = match &args.baseline {
        Some(name) => {
            let Some(class) = classifier
                .index_of(name)
                .filter(|_| name != crate::classify::UNMATCHED)
            else {
                return usage(format!(
                    "--baseline {name}: no class '{name}'; the classes are {known}"
                ));
            };
            match variants.iter().position(|variant| variant.name == *name) {
                Some(index) => Some(index),
                None if full => {
                    return usage(format!(
                        "--baseline {name}: the --expect shares already sum to 100%, so {name} would get 0%; \
                         expect it explicitly or lower the others"
                    ))
                }
                None => {
                    variants.push(Variant {
                        name: name.clone(),
                        class,
                        share: remainder,
                        test: None,
                    });
                    Some(variants.len() - 1)
                }
            }
        }
        None if full => variants
            .iter()
            .enumerate()
            .filter(|(_, variant)| variant.share > 0.0)
            .max_by(|a, b| a.1.share.total_cmp(&b.1.share).then(b.0.cmp(&a.0)))
            .map(|(index, _)| index)
            .filter(|_| variants.len() > 1),
        None => {
            let others: Vec<&String> = names[..names.len() - 1]
                .iter()
                .filter(|name| !variants.iter().any(|variant| &variant.name == *name))
                .collect();
            match others.as_slice() {
                [only] => {
                    let name = (*only).clone();
                    let class = classifier.index_of(&name).expect("listed above");
                    variants.push(Variant {
                        name,
                        class,
                        share: remainder,
                        test: None,
                    });
                    Some(variants.len() - 1)
                }
                [] => {
                    return usage(format!(
                        "--expect shares sum to {}: the other {} needs a class; define the baseline with --classify",
                        percent(total),
                        percent(remainder)
                    ))
                }
                many => {
                    return usage(format!(
                        "--expect shares sum to {}: say which class gets the other {} with --baseline (one of {})",
                        percent(total),
                        percent(remainder),
                        many.iter().map(|name| name.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                }
            }
        }
    };

    // Which shares are tested: with two variants the first expected one
    // (the other is its complement); otherwise every variant.
    let tested: Vec<usize> = if variants.len() == 2 {
        vec![if baseline == Some(0) { 1 } else { 0 }]
    } else {
        (0..variants.len()).collect()
    };
    let mut notes = Vec::new();
    let mut expectations = Vec::new();
    for &index in &tested {
        let share = variants[index].share;
        let minority = share.min(1.0 - share);
        let name = &variants[index].name;
        let tolerance = match &args.tolerance {
            Some(text) => {
                let tolerance = if text.trim().ends_with("pp") {
                    units::parse_points(text).or_else(|why| usage(format!("--tolerance: {why}")))?
                } else {
                    let relative = units::parse_percent(text).map_err(|_| {
                        UsageError(format!(
                            "--tolerance {text}: expected percentage points (2pp) or a percentage of the share (20%)"
                        ))
                    })?;
                    relative * minority
                };
                if tolerance < MIN_TOLERANCE {
                    return usage(format!(
                        "--tolerance {text} ({}) for {name}: expected at least 0.1pp; a finer band needs millions of requests per check",
                        percent(tolerance)
                    ));
                }
                if tolerance <= 0.0 {
                    return usage(format!(
                        "--tolerance {text}: that is no tolerance at all for {name}'s expected {}; give percentage points, e.g. 1pp",
                        percent(share)
                    ));
                }
                if share > 0.0 && share < 1.0 && tolerance >= minority {
                    return usage(format!(
                        "--tolerance {text} ({}) is not below {name}'s expected {} (or its complement): \
                         a {name} that gets {} would pass; give a smaller tolerance, e.g. 20%",
                        percent(tolerance),
                        percent(share),
                        if tolerance >= share { "nothing" } else { "everything" }
                    ));
                }
                tolerance
            }
            None => {
                let default = (0.2 * minority).max(0.01);
                if share > 0.0 && share < 1.0 && default >= minority {
                    notes.push(format!(
                        "tolerance for {name} is {} (half its expected share): the default 1pp would pass a dead {name}",
                        percent(minority / 2.0)
                    ));
                    minority / 2.0
                } else {
                    default
                }
            }
        };
        variants[index].test = Some(expectations.len());
        expectations.push(Expectation { share, tolerance });
    }
    let split = Split::new(&expectations, alpha, 1.0 - power);
    let expected_sequential = split.expected_requests();

    // Health: every other variant against the baseline.
    let health = match baseline {
        Some(_) if !args.no_health && variants.len() > 1 => {
            let max_error_increase = units::parse_points(&args.max_error_increase)
                .ok()
                .filter(|margin| *margin > 0.0)
                .ok_or_else(|| {
                    UsageError(format!(
                        "--max-error-increase {}: expected percentage points above 0, like 1pp",
                        args.max_error_increase
                    ))
                })?;
            let text = args.max_latency_increase.trim();
            let max_latency_increase = if text.ends_with('%') {
                let fraction = units::parse_percent(text)
                    .ok()
                    .filter(|fraction| *fraction > 0.0)
                    .ok_or_else(|| UsageError(format!("--max-latency-increase {text}: expected a percentage above 0% or a duration like 50ms")))?;
                LatencyMargin::Relative(fraction)
            } else {
                let duration = units::parse_duration(text).map_err(|why| {
                    UsageError(format!(
                        "--max-latency-increase: {why} (or a percentage like 20%)"
                    ))
                })?;
                LatencyMargin::Absolute {
                    ms: duration.as_secs_f64() * 1000.0,
                }
            };
            Some(HealthSpec {
                alpha,
                max_error_increase,
                max_latency_increase,
            })
        }
        _ => None,
    };
    if let Some(matcher) = &args.error_if {
        if health.is_none() {
            return usage(format!(
                "--error-if {matcher}: there is no health check in this run (no baseline, or --no-health)"
            ));
        }
    }
    let mut health_needs = Vec::new();
    let mut planned = split.horizon();
    if let (Some(spec), Some(baseline)) = (&health, baseline) {
        let needed = spec.responses_needed();
        for (index, variant) in variants.iter().enumerate() {
            if index != baseline && variant.share > 0.0 {
                health_needs.push((variant.class, needed));
                let share = variant.share.min(variants[baseline].share);
                planned = planned.max((needed as f64 / share).ceil() as u64);
            }
        }
    }

    // The load: bounded by --max-requests (or the plan), every load flag applies.
    let given = match (&args.max_requests, &args.load.requests) {
        (Some(_), Some(_)) => {
            return usage("--max-requests and --requests conflict: give one".to_string())
        }
        (Some(text), None) => {
            Some(units::parse_count(text).or_else(|why| usage(format!("--max-requests: {why}")))?)
        }
        (None, Some(text)) => {
            Some(units::parse_count(text).or_else(|why| usage(format!("--requests: {why}")))?)
        }
        (None, None) => None,
    };
    if let Some(cap) = given.filter(|cap| *cap < planned) {
        notes.push(format!(
            "--max-requests {cap} is below the {planned} requests the checks planned for: expect an inconclusive verdict"
        ));
    }
    let max_requests = given.unwrap_or(planned);
    let mut load_args = args.load.clone();
    load_args.requests = Some(max_requests.to_string());
    let mut load = plan::load_plan(&load_args)?;
    if let Some(matcher) = &args.error_if {
        load.classifier
            .set_error_rule(matcher)
            .map_err(UsageError)?;
    }
    Ok(CanaryPlan {
        load,
        variants,
        baseline,
        split,
        alpha,
        power,
        max_unclassified,
        health,
        health_needs,
        planned_requests: planned,
        max_requests,
        expected_sequential,
        notes,
    })
}

impl CanaryPlan {
    /// What the run will do and why, printed before it starts.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for variant in &self.variants {
            let Some(test) = variant.test else { continue };
            let test = &self.split.tests[test];
            let e = &test.expectation;
            let whole = if self.split.tests.len() > 1 {
                " for the whole split"
            } else {
                ""
            };
            let mut line = format!(
                "share {}: expect {} ± {}pp · fixed-horizon (TOST) needs {} responses; sequential stopping ≈ {:.0} on average{whole}",
                variant.name,
                percent(e.share),
                plan::trim_float((e.tolerance * 1e6).round() / 1e4),
                test.horizon(),
                self.expected_sequential
            );
            if let Some(after) = test.dead_after() {
                line.push_str(&format!(" · dead after {after} without one"));
            }
            lines.push(line);
        }
        if let Some(spec) = &self.health {
            let needed = self.health_needs.first().map_or(0, |need| need.1);
            lines.push(format!(
                "health vs {}: errors +{} at most, latency +{} at most · needs ≈ {} responses per variant",
                self.variants[self.baseline.expect("health has a baseline")].name,
                plan::trim_float(spec.max_error_increase * 100.0) + "pp",
                match spec.max_latency_increase {
                    LatencyMargin::Relative(fraction) => format!("{}% of its median", plan::trim_float(fraction * 100.0)),
                    LatencyMargin::Absolute { ms } => format!("{}ms", plan::trim_float(ms)),
                },
                needed
            ));
        } else {
            lines.push(
                "health: not checked (no baseline to compare with, or --no-health)".to_string(),
            );
        }
        lines.push(format!(
            "α {} · power {} · this run sends at most {} requests (planned {}), stopping as soon as the checks are decided",
            self.alpha, self.power, self.max_requests, self.planned_requests
        ));
        lines.extend(self.notes.iter().map(|note| format!("note: {note}")));
        lines
    }
}

/// Runs the split test on every response and stops the load when every
/// check has what it needs.
///
/// Responses are fed to the split in the order the requests were *sent*,
/// not the order they completed: the assignment to variants happens per
/// request, and a slower canary's responses arrive late, so completion
/// order would make a 50 ms-slower canary look dead for its first 50 ms.
/// A reorder buffer (as long as the requests in flight) restores the order.
struct Watch<'a> {
    plan: &'a CanaryPlan,
    split: Split,
    /// Per class: `Some((variant index, test index or None))` for a variant,
    /// `None` outside every variant.
    variant_of_class: Vec<Option<(usize, Option<usize>)>>,
    /// Responses per variant, all of them (the tests stop counting when decided).
    counts: Vec<u64>,
    classified: u64,
    unclassified: u64,
    /// Request index the split sees next, and what came back for the ones
    /// after it: `None` still in flight, `Some(class)` (u16::MAX: no response).
    next_index: u64,
    pending: std::collections::VecDeque<Option<u16>>,
    state: State,
}

const NO_RESPONSE: u16 = u16::MAX;

impl Watch<'_> {
    fn feed(&mut self, class: u16) {
        if class == NO_RESPONSE {
            return;
        }
        match self.variant_of_class.get(class as usize).copied().flatten() {
            Some((variant, test)) => {
                self.classified += 1;
                self.counts[variant] += 1;
                self.state = self.split.observe(test);
            }
            None => self.unclassified += 1,
        }
    }
}

impl Observer for Watch<'_> {
    fn observe(&mut self, sample: &Sample, recorder: &Recorder) -> Next {
        let class = if sample.outcome == Outcome::Completed {
            sample.class
        } else {
            NO_RESPONSE
        };
        if let Some(offset) = sample.index.checked_sub(self.next_index) {
            let offset = offset as usize;
            if self.pending.len() <= offset {
                self.pending.resize(offset + 1, None);
            }
            self.pending[offset] = Some(class);
            while let Some(Some(class)) = self.pending.front().copied() {
                self.pending.pop_front();
                self.next_index += 1;
                self.feed(class);
            }
        }
        match self.state {
            State::Failed => Next::Stop("the split check failed".to_string()),
            State::Decided
                if self
                    .plan
                    .health_needs
                    .iter()
                    .all(|(class, needed)| recorder.classes[*class as usize].count >= *needed) =>
            {
                Next::Stop("every check has its evidence".to_string())
            }
            _ => Next::Continue,
        }
    }
}

/// Runs `gateprobe canary`.
pub async fn run(args: CanaryArgs) -> Result<u8> {
    let plan = canary_plan(&args)?;
    if !plan.load.quiet {
        for line in plan.describe() {
            crate::errln!("gateprobe: {line}");
        }
    }
    let report = verify(&plan).await?;
    command::emit(&plan.load, &report)?;
    Ok(report.exit_code)
}

/// Sends the plan's traffic and returns the report with its checks.
pub async fn verify(plan: &CanaryPlan) -> Result<Report> {
    let class_count = plan.load.classifier.names().len();
    let mut variant_of_class = vec![None; class_count];
    for (index, variant) in plan.variants.iter().enumerate() {
        variant_of_class[variant.class as usize] = Some((index, variant.test));
    }
    let mut watch = Watch {
        plan,
        split: plan.split.clone(),
        variant_of_class,
        counts: vec![0; plan.variants.len()],
        classified: 0,
        unclassified: 0,
        next_index: 0,
        pending: std::collections::VecDeque::new(),
        state: State::Running,
    };
    let (recorder, info) = command::execute(&plan.load, &mut watch).await?;
    // Whatever is left behind a request that never reported (none should).
    while let Some(slot) = watch.pending.pop_front() {
        if let Some(class) = slot {
            watch.feed(class);
        }
    }
    Ok(build_report(plan, &mut watch, &recorder, &info))
}

fn build_report(
    plan: &CanaryPlan,
    watch: &mut Watch<'_>,
    recorder: &Recorder,
    info: &crate::engine::RunInfo,
) -> Report {
    let mut report = Report::for_load(&plan.load, recorder, info);
    report.command = "canary".to_string();
    let classified = watch.classified;
    let unclassified = watch.unclassified;
    let seen = classified + unclassified;
    let too_many_unclassified =
        seen > 0 && unclassified as f64 / seen as f64 > plan.max_unclassified;
    let mut checks = share_checks(plan, &mut watch.split, &watch.counts, too_many_unclassified);
    let mut unclassified_check = Check::new(
        "unclassified",
        "split.unclassified",
        if too_many_unclassified {
            Verdict::Inconclusive
        } else {
            Verdict::Pass
        },
        json!({ "unclassified": unclassified, "responses": seen,
                "share": if seen == 0 { 0.0 } else { unclassified as f64 / seen as f64 } }),
        json!({ "max_share": plan.max_unclassified }),
        format!(
            "{unclassified} of {seen} responses were in no variant (429, unmarked 5xx, transport errors, unmatched): {} (at most {} allowed){}",
            percent(if seen == 0 { 0.0 } else { unclassified as f64 / seen as f64 }),
            percent(plan.max_unclassified),
            if too_many_unclassified { " — the split cannot be trusted" } else { "" }
        ),
    );
    unclassified_check.used = Some(seen);
    checks.push(unclassified_check);
    if let (Some(spec), Some(baseline)) = (&plan.health, plan.baseline) {
        let variants: Vec<(u16, &str)> = plan
            .variants
            .iter()
            .filter(|variant| variant.share > 0.0)
            .map(|variant| (variant.class, variant.name.as_str()))
            .collect();
        let base = &plan.variants[baseline];
        let pairs = health::pairs(recorder, &variants, (base.class, &base.name));
        let mut health_checks = health::checks(spec, &pairs);
        for check in &mut health_checks {
            check.planned = plan.health_needs.first().map(|need| need.1);
        }
        checks.extend(health_checks);
    }
    let (verdict, deciding) = report::combine(&checks);
    let deciding_reason = deciding.map(|check| format!("{}: {}", check.name, check.reason));
    match (&info.end, report.verdict) {
        (_, Verdict::Error) => {}
        (EndReason::Interrupted, _) => {
            report.reason = format!(
                "interrupted before the checks were decided: partial results{}",
                deciding_reason
                    .map(|why| format!("; {why}"))
                    .unwrap_or_default()
            );
        }
        _ => {
            report.verdict = verdict;
            report.reason =
                deciding_reason.unwrap_or_else(|| format!("all {} checks passed", checks.len()));
        }
    }
    report.exit_code = report.verdict.exit_code();
    report.checks = checks;
    report.canary = Some(CanarySection {
        expect: plan
            .variants
            .iter()
            .map(|variant| (variant.name.clone(), variant.share))
            .collect::<IndexMap<_, _>>(),
        baseline: plan.baseline.map(|index| plan.variants[index].name.clone()),
        alpha: plan.alpha,
        power: plan.power,
        split_fixed_horizon: plan.split.horizon(),
        split_expected_sequential: plan.expected_sequential,
        planned_requests: plan.planned_requests,
        max_requests: plan.max_requests,
        classified,
        unclassified,
    });
    report.overrule_local_exhaustion();
    report
}

/// One check per tested share, and χ² across variants when there are more than two.
fn share_checks(
    plan: &CanaryPlan,
    split: &mut Split,
    counts: &[u64],
    untrusted: bool,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for variant in &plan.variants {
        let Some(index) = variant.test else { continue };
        let test = &mut split.tests[index];
        let decision = test.finish();
        let e = test.expectation.clone();
        let (hits, trials) = test.counts();
        let observed = if trials == 0 {
            0.0
        } else {
            hits as f64 / trials as f64
        };
        let confidence = 1.0 - 2.0 * test.alpha();
        let (low, high) = clopper_pearson(hits, trials, confidence);
        let (band_low, band_high) = e.band();
        let how = match decision.rule {
            Rule::DeadVariant => format!(
                "no {} response in {} (dead {})",
                variant.name, decision.trials, variant.name
            ),
            Rule::Sequential => format!(
                "sequential test decided after {} responses",
                decision.trials
            ),
            Rule::FixedHorizon => format!("fixed-horizon rule at {} responses", decision.trials),
            Rule::EndOfRun => format!(
                "fixed rule on the {} responses the run got",
                decision.trials
            ),
        };
        let mut verdict = match decision.verdict {
            Equivalence::Pass => Verdict::Pass,
            Equivalence::Fail => Verdict::Fail,
            Equivalence::Continue => Verdict::Inconclusive,
        };
        let mut reason = format!(
            "{} got {} ({hits}/{trials}), expected {} (band {}–{}); {} interval {}–{}; {how}",
            variant.name,
            percent(observed),
            percent(e.share),
            percent(band_low),
            percent(band_high),
            level(confidence),
            percent(low),
            percent(high)
        );
        if untrusted {
            verdict = Verdict::Inconclusive;
            reason.push_str(" — but too many responses were in no variant");
        }
        let mut check = Check::new(
            format!("share {}", variant.name),
            "split.share",
            verdict,
            json!({ "share": observed, "responses": hits, "of": trials, "rule": format!("{:?}", decision.rule).to_lowercase() }),
            json!({ "share": e.share, "tolerance": e.tolerance, "band": [band_low, band_high] }),
            reason,
        );
        check.interval = Some(Interval {
            low,
            high,
            confidence,
        });
        check.p_value = Some(split::exact_p(e.share, hits, trials));
        check.planned = Some(test.horizon());
        check.used = Some(decision.trials);
        checks.push(check);
    }
    if plan.variants.len() > 2 {
        let observed = counts.to_vec();
        let shares: Vec<f64> = plan.variants.iter().map(|variant| variant.share).collect();
        let total: u64 = observed.iter().sum();
        let (statistic, freedom, p) = chi_square_goodness_of_fit(&observed, &shares);
        let off = plan.variants.iter().zip(&observed).any(|(variant, seen)| {
            let tolerance = variant
                .test
                .map_or(0.0, |index| split.tests[index].expectation.tolerance);
            total > 0 && (*seen as f64 / total as f64 - variant.share).abs() > tolerance
        });
        let all_pass = checks.iter().all(|check| check.verdict == Verdict::Pass);
        let verdict = if p < split::DECISIVE_P && off {
            Verdict::Fail
        } else if all_pass {
            Verdict::Pass
        } else {
            Verdict::Inconclusive
        };
        let mut check = Check::new(
            "split χ²",
            "split.chi_square",
            verdict,
            json!({ "counts": plan.variants.iter().map(|v| v.name.clone()).zip(observed.clone()).collect::<IndexMap<_, _>>(),
                    "statistic": statistic, "degrees_of_freedom": freedom }),
            json!({ "shares": plan.variants.iter().map(|v| (v.name.clone(), v.share)).collect::<IndexMap<_, _>>() }),
            format!(
                "χ²={statistic:.2} on {freedom} df over {total} responses, p={p:.3}: {}",
                match verdict {
                    Verdict::Fail => "the split differs from the expected shares beyond tolerance",
                    Verdict::Pass => "consistent with the expected shares",
                    _ => "not every variant's share is decided",
                }
            ),
        );
        check.p_value = Some(p);
        check.used = Some(total);
        checks.push(check);
    }
    checks
}
