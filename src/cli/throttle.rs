//! `gateprobe throttle`'s flags into a [`ThrottlePlan`].
use std::sync::Arc;
use std::time::Duration;

use super::{LoadArgs, ThrottleArgs};
use crate::plan::pacer::Pacer;
use crate::plan::{usage, LoadPlan, UsageError};
use crate::throttle::identify::Limiter;
use crate::throttle::plan::{ThrottlePlan, FORBIDDEN, PACER_MARGIN, QUOTA, THROTTLED};
use crate::units;

/// The classification rules: the probe's own first (quota, throttled,
/// forbidden) unless the user defines a class of that name, then the user's,
/// then the load defaults when the user gave none.
fn rules(user: &[String]) -> Vec<String> {
    let defines = |name: &str| {
        user.iter()
            .any(|rule| rule.split_once('=').is_some_and(|(n, _)| n.trim() == name))
    };
    let mut rules: Vec<String> = Vec::new();
    for (name, rule) in [
        (QUOTA, "quota=status:429&body:contains:Limit Exceeded"),
        (THROTTLED, "throttled=status:429"),
        (FORBIDDEN, "forbidden=status:403"),
        (FORBIDDEN, "forbidden=status:401"),
    ] {
        if !defines(name) {
            rules.push(rule.to_string());
        }
    }
    rules.extend(user.iter().cloned());
    // Rules that only redefine the probe's own classes (`throttled=status:500`
    // for a Lambda behind API Gateway) keep the defaults for the rest.
    let only_probe_classes = user.iter().all(|rule| {
        rule.split_once('=')
            .is_some_and(|(name, _)| [QUOTA, THROTTLED, FORBIDDEN].contains(&name.trim()))
    });
    if only_probe_classes {
        rules.extend(
            crate::classify::DEFAULT_RULES
                .iter()
                .filter(|rule| !rule.starts_with("throttled="))
                .map(|rule| rule.to_string()),
        );
    }
    rules
}

/// A flag's value, parsed; the flag named in the error.
fn given<T>(
    flag: &str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, UsageError> {
    parse(text).or_else(|why| usage(format!("{flag}: {why}")))
}

/// An optional flag's value, parsed.
fn optional<T>(
    flag: &str,
    text: &Option<String>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, UsageError> {
    text.as_deref()
        .map(|text| given(flag, text, parse))
        .transpose()
}

/// The flags of `load` the probe sets itself: every rate shape, and the
/// run's size. A scenario's throttle step does not take them either.
pub fn refused_load_flags() -> impl Iterator<Item = &'static str> {
    LoadArgs::shape_flags().chain(["--duration", "--requests", "--connections"])
}

fn refuse_load_shapes(args: &ThrottleArgs) -> Result<(), UsageError> {
    let load = &args.load;
    if let Some(flag) = load.sharding.given() {
        return usage(format!(
            "{flag}: a throttle probe cannot be sharded: it chooses each next rate from the answers to its own last one, so N shards would each probe with their own schedule and together offer the limiter N times the rate each one believes; run one probe (from one address, or one per API key with --api-keys)"
        ));
    }
    let given = load
        .shapes()
        .into_iter()
        .map(|(_, value)| value.is_some())
        .chain([
            load.duration.is_some(),
            load.requests.is_some(),
            load.connections.is_some(),
        ]);
    for (flag, given) in refused_load_flags().zip(given) {
        if given {
            return usage(format!(
                "{flag}: the throttle probe chooses its own rates; bound it with --max-rate, \
                 --max-requests and --max-duration"
            ));
        }
    }
    Ok(())
}

/// The probe's own load: the flags' request and classes (with the probe's
/// classes added), paced at `max_rate` in any second.
fn probe_load(args: &ThrottleArgs, max_rate: f64) -> Result<LoadPlan, UsageError> {
    let mut load_args = args.load.clone();
    load_args.classify = rules(&args.load.classify);
    let mut load = crate::cli::load::load_plan(&load_args)?;
    load.pacer = Some(Arc::new(Pacer::new(
        max_rate.floor().max(1.0) as u64,
        Duration::from_secs(1) + PACER_MARGIN,
    )));
    Ok(load)
}

/// An expected rate and burst, and the file that declared them.
type ExpectedBucket = (Option<f64>, Option<f64>, Option<String>);

/// The expected bucket rate and burst, and where they were declared: from
/// `--aws-stage`/`--aws-usage-plan` for the probed method, or from
/// `--expect-rate`/`--expect-burst` (one place or the other, not both).
fn expected_bucket(args: &ThrottleArgs, load: &LoadPlan) -> Result<ExpectedBucket, UsageError> {
    let declared = crate::cli::aws::declared_throttle(
        args.aws_stage.as_deref(),
        args.aws_usage_plan.as_deref(),
        load.request.endpoint.path(),
        load.request.method.as_str(),
    )?;
    match declared {
        Some(_) if args.expect_rate.is_some() || args.expect_burst.is_some() => Err(UsageError(
            "--aws-stage/--aws-usage-plan and --expect-rate/--expect-burst conflict: give the expectation in one place".into(),
        )),
        Some(declared) => Ok((Some(declared.rate), declared.burst, Some(declared.source))),
        None => Ok((
            optional("--expect-rate", &args.expect_rate, units::parse_rate)?,
            optional("--expect-burst", &args.expect_burst, count)?,
            None,
        )),
    }
}

fn count(text: &str) -> Result<f64, String> {
    units::parse_count(text).map(|n| n as f64)
}

fn parse_model(text: &str) -> Result<Limiter, String> {
    Limiter::parse(text).ok_or_else(|| {
        format!(
            "expected one of {}",
            Limiter::ALL
                .iter()
                .filter(|model| **model != Limiter::Unknown)
                .map(|model| model.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

pub fn throttle_plan(args: &ThrottleArgs) -> Result<ThrottlePlan, UsageError> {
    refuse_load_shapes(args)?;
    let max_rate = given("--max-rate", &args.max_rate, units::parse_rate)?;
    let max_requests = given("--max-requests", &args.max_requests, units::parse_count)?;
    let max_duration = given("--max-duration", &args.max_duration, units::parse_duration)?;
    if max_duration.is_zero() {
        return usage("--max-duration: expected a duration above 0, e.g. 60s".to_string());
    }
    let idle = given("--idle", &args.idle, units::parse_duration_or_zero)?;
    let start_rate = given("--start-rate", &args.start_rate, units::parse_rate)?;
    if start_rate > max_rate {
        return usage(format!(
            "--start-rate {}: above --max-rate {}",
            args.start_rate, args.max_rate
        ));
    }
    let step = given("--step", &args.step, units::parse_duration)?;
    if step < Duration::from_millis(100) {
        return usage(format!(
            "--step {}: expected at least 100ms (a step must hold several requests)",
            args.step
        ));
    }
    let seconds = |text: &str| units::parse_duration(text).map(|d| d.as_secs_f64());
    let tolerance = given("--tolerance", &args.tolerance, units::parse_percent)?;
    if tolerance <= 0.0 || tolerance >= 1.0 {
        return usage(format!(
            "--tolerance {}: expected a share between 0% and 100%, e.g. 10%",
            args.tolerance
        ));
    }
    let load = probe_load(args, max_rate)?;
    let (expect_rate, expect_burst, expect_source) = expected_bucket(args, &load)?;
    let classifier = &load.classifier;
    Ok(ThrottlePlan {
        quota: classifier.index_of(QUOTA),
        throttled: classifier.index_of(THROTTLED),
        forbidden: classifier.index_of(FORBIDDEN),
        load,
        max_rate,
        max_requests,
        max_duration,
        idle,
        start_rate,
        step,
        expect_rate,
        expect_burst,
        expect_source,
        expect_quota: crate::cli::aws::declared_quota(args.aws_usage_plan.as_deref())?,
        expect_model: optional("--expect-model", &args.expect_model, parse_model)?,
        expect_concurrency: optional("--expect-concurrency", &args.expect_concurrency, count)?,
        expect_window_limit: optional("--expect-window-limit", &args.expect_window_limit, count)?,
        expect_window_s: optional("--expect-window", &args.expect_window, seconds)?,
        expect_queue_depth: optional("--expect-queue-depth", &args.expect_queue_depth, count)?,
        tolerance,
        honour_retry_after: !args.ignore_retry_after,
    })
}
