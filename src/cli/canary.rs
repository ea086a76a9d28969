//! `canary` flags become a [`CanaryPlan`]: one clear message per mistake.
use anyhow::Result;

use crate::canary::drops::DropDesign;
use crate::canary::health::{HealthSpec, LatencyMargin};
use crate::canary::latency::{Bins, LatencyDesign};
use crate::canary::plan::*;
use crate::canary::split::{Expectation, Split};
use crate::classify::Classifier;
use crate::cli::CanaryArgs;
use crate::plan::schedule::Schedule;
use crate::plan::{usage, LoadPlan, UsageError};
use crate::units;

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

pub fn canary_plan(args: &CanaryArgs) -> Result<CanaryPlan, UsageError> {
    let alpha = open_unit(&args.alpha, "--alpha", 0.0, 0.5, "0.01")?;
    let power = open_unit(&args.power, "--power", 0.5, 1.0, "0.95")?;
    let classifier = crate::classify::Classifier::parse(&args.load.classify).map_err(UsageError)?;
    let mut variants = declared_variants(args, &classifier)?;
    let baseline = baseline(args.baseline.as_deref(), &classifier, &mut variants)?;
    let mut notes = Vec::new();
    let expectations = tested_shares(args, &mut variants, baseline, &mut notes)?;
    let probe = load(args, 1)?;
    let cap = request_cap(args)?;
    let budget = budget(cap, &probe, args.load.duration.is_some());
    let split = Split::new(&expectations, alpha, power, budget);
    let expected_sequential = split.expected_requests();
    let tost_size = tost_size(&split);
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
    if let (Some(matcher), None) = (&args.error_if, &health) {
        return usage(format!(
            "--error-if {matcher}: there is no health check in this run (no baseline, or --no-health)"
        ));
    }

    let rate_per_s = match &probe.schedule {
        Schedule::Open(curve) => Some(curve.max_rate_per_s()),
        Schedule::Closed => None,
    };
    let split_budget = split.horizon();
    let drops = drop_designs(&variants, baseline, health.as_ref(), split_budget, power);
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
        latency: health.map(|spec| LatencyDesign::planned(split_budget, spec.alpha, power)),
        latency_bin_us: Bins::width_for(rate_per_s, smallest_share),
        drops,
        rate_per_s,
        notes,
    };
    size(&mut canary, cap);
    let load = load(args, canary.max_requests)?;
    canary.load = load;
    shard_bounds(&mut canary, cap);
    Ok(canary)
}

/// A shard decides nothing alone: it sends its part of a fixed horizon,
/// and `gateprobe merge` evaluates the checks once on the union, at that
/// fixed size (one look with all of α).
fn shard_bounds(canary: &mut CanaryPlan, cap: Option<u64>) {
    let shard = canary.load.shard();
    if shard.count <= 1 {
        return;
    }
    let total = cap.map_or(canary.planned_requests, |cap| {
        cap.min(canary.planned_requests)
    });
    canary.load.max_requests = Some(total);
    canary.max_requests = total;
    canary.notes.push(format!(
        "shard {}/{}: no early stop; this shard sends its {} of the {total} requests the checks plan for, and `gateprobe merge` decides them on all shards' responses at that fixed size",
        shard.index,
        shard.count,
        shard.owned_below(total)
    ));
}

/// The expected variants from `--expect`, plus the canary's share from an
/// `--aws-stage` file when one is given (named as its source).
fn declared_variants(
    args: &CanaryArgs,
    classifier: &Classifier,
) -> Result<Vec<Variant>, UsageError> {
    let mut expect = args.expect.clone();
    let declared = match &args.aws_stage {
        Some(path) => {
            let (share, source) = crate::cli::aws::canary_share(path)?;
            expect.push(format!("canary={}%", units::trim_float(share * 100.0)));
            Some(source)
        }
        None => None,
    };
    let mut variants = expected_variants(&expect, classifier)?;
    if let Some(source) = declared {
        if let Some(variant) = variants.iter_mut().find(|v| v.name == "canary") {
            variant.source = Some(source);
        }
    }
    Ok(variants)
}

/// The shares that are tested, each with its tolerance: with two variants
/// the first expected one (the other is its complement); otherwise every
/// variant. Marks each tested variant with its expectation's index.
fn tested_shares(
    args: &CanaryArgs,
    variants: &mut [Variant],
    baseline: Option<usize>,
    notes: &mut Vec<String>,
) -> Result<Vec<Expectation>, UsageError> {
    let tested: Vec<usize> = if variants.len() == 2 {
        vec![if baseline == Some(0) { 1 } else { 0 }]
    } else {
        (0..variants.len()).collect()
    };
    let tolerance = Tolerance::parse(args.tolerance.as_deref())?;
    let mut expectations = Vec::new();
    for &index in &tested {
        let variant = &mut variants[index];
        let tolerance = tolerance.around(&variant.name, variant.share, notes)?;
        variant.test = Some(expectations.len());
        expectations.push(Expectation {
            share: variant.share,
            tolerance,
        });
    }
    Ok(expectations)
}

/// The load of at most `requests` the canary sends: warm connections, and
/// `--error-if` as the health checks' error rule.
fn load(args: &CanaryArgs, requests: u64) -> Result<LoadPlan, UsageError> {
    let mut load_args = args.load.clone();
    load_args.requests = Some(requests.to_string());
    let mut load = crate::cli::load::load_plan(&load_args)?;
    load.warm_connections = WARM_CONNECTIONS.min(load.concurrency);
    if let Some(matcher) = &args.error_if {
        load.classifier
            .set_error_rule(matcher)
            .map_err(UsageError)?;
    }
    Ok(load)
}

/// The fixed-sample test's size for the zone each tested share's plan
/// decides: the most any tested share needs.
fn tost_size(split: &Split) -> u64 {
    split
        .tests
        .iter()
        .map(|test| test.design().fixed)
        .max()
        .unwrap_or(0)
}

/// Each compared variant's drop test, planned over its and the
/// baseline's share of the budget (with a health check).
fn drop_designs(
    variants: &[Variant],
    baseline: Option<usize>,
    health: Option<&HealthSpec>,
    budget: u64,
    power: f64,
) -> Vec<(usize, DropDesign)> {
    let (Some(baseline), Some(spec)) = (baseline, health) else {
        return Vec::new();
    };
    let base_share = variants[baseline].share;
    variants
        .iter()
        .enumerate()
        .filter(|(index, variant)| *index != baseline && variant.share > 0.0)
        .map(|(index, variant)| {
            let pair = variant.share + base_share;
            let responses = (budget as f64 * pair).ceil() as u64;
            (
                index,
                DropDesign::planned(variant.share / pair, responses, spec.alpha, power),
            )
        })
        .collect()
}

/// The classes a matcher may name, for messages.
fn known(classifier: &Classifier) -> String {
    let names = classifier.names();
    names[..names.len() - 1].join(", ")
}

/// `--expect CLASS=SHARE…`: each a defined class, once, the shares at most 100%.
fn expected_variants(
    expect: &[String],
    classifier: &Classifier,
) -> Result<Vec<Variant>, UsageError> {
    let known = known(classifier);
    let mut variants: Vec<Variant> = Vec::new();
    for text in expect {
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
            source: None,
        });
    }
    let total: f64 = variants.iter().map(|variant| variant.share).sum();
    if total > 1.0 + 1e-9 {
        return usage(format!(
            "--expect shares sum to {}: they may sum to at most 100%",
            percent(total)
        ));
    }
    Ok(variants)
}

/// The baseline: named (`--baseline`, given the remainder unless expected),
/// the one class left (given the remainder), or — when the shares sum to
/// 100% — the largest expected.
fn baseline(
    named: Option<&str>,
    classifier: &Classifier,
    variants: &mut Vec<Variant>,
) -> Result<Option<usize>, UsageError> {
    let known = known(classifier);
    let total: f64 = variants.iter().map(|variant| variant.share).sum();
    let remainder = (1.0 - total).max(0.0);
    let full = remainder < 1e-9;
    let baseline = match named {
        Some(name) => {
            let Some(class) = classifier
                .index_of(name)
                .filter(|_| name != crate::classify::UNMATCHED)
            else {
                return usage(format!(
                    "--baseline {name}: no class '{name}'; the classes are {known}"
                ));
            };
            match variants.iter().position(|variant| variant.name == name) {
                Some(index) => Some(index),
                None if full => {
                    return usage(format!(
                        "--baseline {name}: the --expect shares already sum to 100%, so {name} would get 0%; \
                         expect it explicitly or lower the others"
                    ))
                }
                None => {
                    variants.push(Variant {
                        name: name.to_string(),
                        class,
                        share: remainder,
                        test: None,
                        source: None,
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
        None => Some(the_other(classifier, variants, (total, remainder))?),
    };
    Ok(baseline)
}

/// The one class no `--expect` names, given the `remainder` of the `total`; an error when
/// there is none or more than one.
fn the_other(
    classifier: &Classifier,
    variants: &mut Vec<Variant>,
    (total, remainder): (f64, f64),
) -> Result<usize, UsageError> {
    let names = classifier.names();
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
                source: None,
            });
            Ok(variants.len() - 1)
        }
        [] => {
            usage(format!(
                "--expect shares sum to {}: the other {} needs a class; define the baseline with --classify",
                percent(total),
                percent(remainder)
            ))
        }
        many => {
            usage(format!(
                "--expect shares sum to {}: say which class gets the other {} with --baseline (one of {})",
                percent(total),
                percent(remainder),
                many.iter().map(|name| name.as_str()).collect::<Vec<_>>().join(", ")
            ))
        }
    }
}

/// `--tolerance`: percentage points (`2pp`), a percentage of each share's
/// minority side (`20%`), or the default.
enum Tolerance<'a> {
    Points(&'a str, f64),
    OfShare(&'a str, f64),
    Default,
}

impl<'a> Tolerance<'a> {
    fn parse(text: Option<&'a str>) -> Result<Self, UsageError> {
        let Some(text) = text else {
            return Ok(Tolerance::Default);
        };
        if text.trim().ends_with("pp") {
            let points =
                units::parse_points(text).or_else(|why| usage(format!("--tolerance: {why}")))?;
            return Ok(Tolerance::Points(text, points));
        }
        let relative = units::parse_percent(text).map_err(|_| {
            UsageError(format!(
                "--tolerance {text}: expected percentage points (2pp) or a percentage of the share (20%)"
            ))
        })?;
        Ok(Tolerance::OfShare(text, relative))
    }

    /// The tolerance around `name`'s expected `share`: one a check can
    /// decide (at least 0.1pp, below the share and its complement). The
    /// default is 20% of the minority side, at least 1pp, or half of it
    /// where 1pp would pass a dead variant (said in `notes`).
    fn around(&self, name: &str, share: f64, notes: &mut Vec<String>) -> Result<f64, UsageError> {
        let minority = share.min(1.0 - share);
        let (text, tolerance) = match *self {
            Tolerance::Points(text, points) => (text, points),
            Tolerance::OfShare(text, relative) => (text, relative * minority),
            Tolerance::Default => {
                let default = (0.2 * minority).max(0.01);
                if share > 0.0 && share < 1.0 && default >= minority {
                    notes.push(format!(
                        "tolerance for {name} is {} (half its expected share): the default 1pp would pass a dead {name}",
                        percent(minority / 2.0)
                    ));
                    return Ok(minority / 2.0);
                }
                return Ok(default);
            }
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
                if tolerance >= share {
                    "nothing"
                } else {
                    "everything"
                }
            ));
        }
        Ok(tolerance)
    }
}

/// `--max-requests` (or `--requests`, the same bound for a canary).
fn request_cap(args: &CanaryArgs) -> Result<Option<u64>, UsageError> {
    match (&args.max_requests, &args.load.requests) {
        (Some(_), Some(_)) => usage("--max-requests and --requests conflict: give one".to_string()),
        (Some(text), None) => units::parse_count(text)
            .map(Some)
            .or_else(|why| usage(format!("--max-requests: {why}"))),
        (None, Some(text)) => units::parse_count(text)
            .map(Some)
            .or_else(|why| usage(format!("--requests: {why}"))),
        (None, None) => Ok(None),
    }
}

/// The responses the run can count on, which the split plans to decide
/// within: `--max-requests`, and what `--duration` at the schedule's rate
/// sends (the smaller); none when neither bounds the run.
fn budget(cap: Option<u64>, probe: &LoadPlan, timed: bool) -> Option<u64> {
    let timed = match (&probe.schedule, timed) {
        (Schedule::Open(curve), true) => Some(curve.expected_requests().floor() as u64),
        _ => None,
    };
    match (cap, timed) {
        (Some(cap), Some(timed)) => Some(cap.min(timed)),
        (cap, timed) => cap.or(timed),
    }
    .map(|budget| budget.max(1))
}

/// The requests the checks plan for, and the cap: `given`, or room to
/// re-plan for a baseline five times as error-prone as assumed (at least
/// 5%), never under twice the plan.
fn size(canary: &mut CanaryPlan, given: Option<u64>) {
    let mut planned = canary.split.horizon();
    if let Some(spec) = &canary.health {
        planned = planned.max(canary.error_requests(spec, spec.assumed_error_rate));
    }
    canary.planned_requests = planned;
    if let Some(cap) = given.filter(|cap| *cap < planned) {
        // The split and latency plans fit the budget by construction: only
        // the error check, planned for an assumed baseline rate, can exceed it.
        let assumed = canary.health.map_or(0.0, |spec| spec.assumed_error_rate);
        canary.notes.push(format!(
            "the error check plans {planned} requests for a baseline error rate of {} (--baseline-error-rate), more than --max-requests {cap}: it may end inconclusive unless the baseline errs less (it re-plans from the rate it sees)",
            percent(assumed)
        ));
    }
    canary.max_requests = given.unwrap_or_else(|| {
        let room = canary.health.map_or(0, |spec| {
            canary.error_requests(&spec, (5.0 * spec.assumed_error_rate).clamp(0.05, 0.5))
        });
        planned.saturating_mul(2).max(room)
    });
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
