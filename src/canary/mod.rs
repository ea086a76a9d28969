//! `gateprobe canary`: is the split what it should be, and is the canary as
//! healthy as the baseline? The load engine sends the traffic; an observer
//! ([`watch::Watch`]) feeds every response to the split's confidence
//! sequences and the health checks, looks once per second, re-plans from
//! what it sees, and stops the load as soon as every check is decided, one
//! fails, or the responses turn out not to be independent per request.
//!
//! Every statement the checks make holds at whatever moment the run stops
//! (confidence sequences, [`crate::stats::confseq`]): the split's pass and
//! fail, the error check's and the latency check's, each at its stated α.
pub mod health;
pub mod simulate;
pub mod split;
pub mod watch;

use anyhow::Result;
use indexmap::IndexMap;
use serde_json::json;

use crate::cli::CanaryArgs;
use crate::engine::schedule::Schedule;
use crate::engine::{command, EndReason};
use crate::plan::{self, LoadPlan, UsageError};
use crate::record::Recorder;
use crate::report::{self, CanarySection, Check, Interval, Report, Verdict};
use crate::stats::binomial::tost_sample_size;
use crate::units;
use health::{HealthSpec, LatencyMargin, Standing};
use split::{Expectation, Outcome, Rule, Split};
use watch::Watch;

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
    /// Most responses outside every variant before the checks are inconclusive.
    pub max_unclassified: f64,
    pub health: Option<HealthSpec>,
    /// Responses the checks plan for at the start (re-planned during the run).
    pub planned_requests: u64,
    /// The run's hard bound on requests.
    pub max_requests: u64,
    /// The fixed-horizon (TOST) size at the same α and power, for comparison.
    pub tost_size: u64,
    /// Mean classified responses to a split decision at the expected shares
    /// (seeded simulation of this procedure).
    pub expected_sequential: f64,
    /// Seconds the latency check plans for until it has seen the spread.
    pub latency_seconds: u64,
    /// The offered rate, when it is fixed (open model).
    pub rate_per_s: Option<f64>,
    pub notes: Vec<String>,
}

/// Connections opened before the clock starts, so that a split that sticks
/// to connections shows (at 10% per connection, P(none of 64 is the
/// canary's) = 0.9^64 = 0.1%).
pub const WARM_CONNECTIONS: usize = 64;

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
    let split = Split::new(&expectations, alpha, power);
    let expected_sequential = split.expected_requests();
    let tost_size = expectations
        .iter()
        .filter(|e| e.share > 0.0 && e.share < 1.0)
        .map(|e| {
            tost_sample_size(
                e.share,
                e.tolerance,
                alpha / expectations.len() as f64,
                power,
            )
        })
        .max()
        .unwrap_or(0);
    let smallest_share = variants
        .iter()
        .map(|variant| variant.share)
        .filter(|share| *share > 0.0)
        .fold(1.0, f64::min);
    let max_unclassified = match &args.max_unclassified {
        Some(text) => {
            units::parse_percent(text).or_else(|why| usage(format!("--max-unclassified: {why}")))?
        }
        None => smallest_share / 10.0,
    };

    // Health: every other variant against the baseline.
    let health = match baseline {
        Some(_) if !args.no_health && variants.len() > 1 => Some(health_spec(args, alpha, power)?),
        _ => None,
    };
    if let Some(matcher) = &args.error_if {
        if health.is_none() {
            return usage(format!(
                "--error-if {matcher}: there is no health check in this run (no baseline, or --no-health)"
            ));
        }
    }

    // The load: bounded by --max-requests (or the room to re-plan, below).
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
    let mut load_args = args.load.clone();
    load_args.requests = Some("1".to_string());
    let probe = plan::load_plan(&load_args)?;
    let rate_per_s = match &probe.schedule {
        Schedule::Open(curve) => Some(curve.max_rate_per_s()),
        Schedule::Closed => None,
    };
    let mut canary = CanaryPlan {
        load: probe,
        variants,
        baseline,
        split,
        alpha,
        power,
        max_unclassified,
        health,
        planned_requests: 0,
        max_requests: 0,
        tost_size,
        expected_sequential,
        latency_seconds: health::MIN_SECONDS as u64,
        rate_per_s,
        notes,
    };
    let mut planned = canary.split.horizon();
    if let Some(spec) = &canary.health {
        planned = planned.max(canary.error_requests(spec, spec.assumed_error_rate));
        if let Some(rate) = rate_per_s {
            planned = planned.max((rate * canary.latency_seconds as f64).ceil() as u64);
        }
    }
    canary.planned_requests = planned;
    if let Some(cap) = given.filter(|cap| *cap < planned) {
        canary.notes.push(format!(
            "--max-requests {cap} is below the {planned} requests the checks plan for: expect an inconclusive verdict"
        ));
    }
    // The default cap leaves room to re-plan for a baseline five times as
    // error-prone as assumed (at least 5%), and never under twice the plan.
    canary.max_requests = given.unwrap_or_else(|| {
        let room = canary.health.map_or(0, |spec| {
            canary.error_requests(&spec, (5.0 * spec.assumed_error_rate).clamp(0.05, 0.5))
        });
        planned.saturating_mul(2).max(room)
    });
    load_args.requests = Some(canary.max_requests.to_string());
    let mut load = plan::load_plan(&load_args)?;
    load.warm_connections = WARM_CONNECTIONS.min(load.concurrency);
    if let Some(matcher) = &args.error_if {
        load.classifier
            .set_error_rule(matcher)
            .map_err(UsageError)?;
    }
    canary.load = load;
    Ok(canary)
}

fn health_spec(args: &CanaryArgs, alpha: f64, power: f64) -> Result<HealthSpec, UsageError> {
    let max_error_increase = units::parse_points(&args.max_error_increase)
        .ok()
        .filter(|margin| *margin >= 0.0005)
        .ok_or_else(|| {
            UsageError(format!(
                "--max-error-increase {}: expected percentage points of at least 0.05pp, like 1pp",
                args.max_error_increase
            ))
        })?;
    let text = args.max_latency_increase.trim();
    let max_latency_increase = if text.ends_with('%') {
        let fraction = units::parse_percent(text)
            .ok()
            .filter(|fraction| *fraction >= 0.01)
            .ok_or_else(|| {
                UsageError(format!(
                    "--max-latency-increase {text}: expected a percentage of at least 1% or a duration like 50ms"
                ))
            })?;
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
    let assumed_error_rate = units::parse_percent(&args.baseline_error_rate)
        .ok()
        .filter(|rate| *rate < 0.5)
        .ok_or_else(|| {
            UsageError(format!(
                "--baseline-error-rate {}: expected a percentage below 50%, like 1%",
                args.baseline_error_rate
            ))
        })?;
    Ok(HealthSpec {
        alpha,
        power,
        max_error_increase,
        max_latency_increase,
        assumed_error_rate,
    })
}

impl CanaryPlan {
    /// Responses (classified and not) the error check plans for at a
    /// baseline error rate: for the smallest compared variant.
    pub fn error_requests(&self, spec: &HealthSpec, rate: f64) -> u64 {
        let Some(baseline) = self.baseline else {
            return 0;
        };
        let baseline_share = self.variants[baseline].share;
        self.variants
            .iter()
            .enumerate()
            .filter(|(index, variant)| *index != baseline && variant.share > 0.0)
            .map(|(_, variant)| spec.error_plan(rate, variant.share, baseline_share))
            .max()
            .unwrap_or(0)
    }

    /// What the run will do and why, printed before it starts.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for variant in &self.variants {
            let Some(test) = variant.test else { continue };
            let test = &self.split.tests[test];
            let e = &test.expectation;
            let mut line = format!(
                "share {}: expect {} ± {}pp · {} confidence sequence, valid at any stop · plans ≤ {} responses; ≈ {:.0} on average at {} (a fixed-horizon TOST needs {})",
                variant.name,
                percent(e.share),
                plan::trim_float((e.tolerance * 1e6).round() / 1e4),
                level(1.0 - test.alpha()),
                test.horizon(),
                self.expected_sequential,
                percent(e.share),
                self.tost_size
            );
            if let Some(after) = test.dead_after() {
                line.push_str(&format!(" · a dead {} fails after {after}", variant.name));
            }
            lines.push(line);
        }
        if let (Some(spec), Some(baseline)) = (&self.health, self.baseline) {
            lines.push(format!(
                "health vs {}: errors +{} at most, latency {} at most · {} sequences · plans {} requests for a baseline error rate of {} (assumed until seen; re-planned from it) and ≥ {} one-second latency blocks, power {}",
                self.variants[baseline].name,
                plan::trim_float(spec.max_error_increase * 100.0) + "pp",
                spec.max_latency_increase.describe(),
                level(1.0 - self.alpha),
                self.error_requests(spec, spec.assumed_error_rate),
                percent(spec.assumed_error_rate),
                self.latency_seconds,
                self.power
            ));
        } else {
            lines.push(
                "health: not checked (no baseline to compare with, or --no-health)".to_string(),
            );
        }
        lines.push(format!(
            "α {} · power {} · plans {} requests, never more than {}; stops as soon as every check is decided · responses no variant claims count against the canary (at most {})",
            self.alpha,
            self.power,
            self.planned_requests,
            self.max_requests,
            percent(self.max_unclassified)
        ));
        lines.extend(self.notes.iter().map(|note| format!("note: {note}")));
        lines
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
    let mut watch = Watch::new(plan);
    let (recorder, info) = command::execute(&plan.load, &mut watch).await?;
    watch.finish();
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
    let dependence = watch.dependence.finding();
    let seen = watch.classified + watch.unattributable;
    let unattributable_share = if seen == 0 {
        0.0
    } else {
        watch.unattributable as f64 / seen as f64
    };
    let too_many = unattributable_share > plan.max_unclassified;
    let mut checks = share_checks(plan, watch, dependence.is_some());
    let mut unattributable = Check::new(
        "unclassified",
        "split.unclassified",
        if too_many {
            Verdict::Inconclusive
        } else {
            Verdict::Pass
        },
        json!({ "unattributable": watch.unattributable, "responses": seen, "share": unattributable_share }),
        json!({ "max_share": plan.max_unclassified }),
        format!(
            "{} of {seen} responses were in no variant (transport errors, timeouts, 429, unmarked 5xx, unmatched): {} (at most {}); they count both ways in the split and as the canary's errors in the health check{}",
            watch.unattributable,
            percent(unattributable_share),
            percent(plan.max_unclassified),
            if too_many { " — too many to trust the checks" } else { "" }
        ),
    );
    unattributable.used = Some(seen);
    checks.push(unattributable);
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
                p(dependence.by_connection).map_or(String::new(), |p| format!(", p = {}", report::format_p(p))),
                p(dependence.by_second).map_or(String::new(), |p| format!(" (p = {})", report::format_p(p)))
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
    let baseline_name = &plan.variants[baseline].name;
    let mut checks = Vec::new();
    let confidence = 1.0 - spec.alpha;
    let standing_verdict = |standing: Standing| match standing {
        Standing::Pass => Verdict::Pass,
        Standing::Fail => Verdict::Fail,
        Standing::Undecided => Verdict::Inconclusive,
    };
    for health in &watch.health {
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
        checks.push(check);

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
        checks.push(check);
    }
    checks
}

/// A difference of rates in percentage points: +0.42pp.
fn points(value: f64) -> String {
    format!("{:+.2}pp", value * 100.0)
}
