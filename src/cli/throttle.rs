//! `gateprobe throttle`'s flags into a [`ThrottlePlan`].
use std::sync::Arc;
use std::time::Duration;

use super::ThrottleArgs;
use crate::plan::pacer::Pacer;
use crate::plan::{usage, UsageError};
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

pub fn throttle_plan(args: &ThrottleArgs) -> Result<ThrottlePlan, UsageError> {
    let shapes = args
        .load
        .shapes()
        .map(|(flag, value)| (flag, value.is_some()));
    for (flag, given) in shapes.into_iter().chain([
        ("--duration", args.load.duration.is_some()),
        ("--requests", args.load.requests.is_some()),
        ("--connections", args.load.connections.is_some()),
    ]) {
        if given {
            return usage(format!(
                "{flag}: the throttle probe chooses its own rates; bound it with --max-rate, \
                 --max-requests and --max-duration"
            ));
        }
    }
    let max_rate =
        units::parse_rate(&args.max_rate).or_else(|why| usage(format!("--max-rate: {why}")))?;
    let max_requests = units::parse_count(&args.max_requests)
        .or_else(|why| usage(format!("--max-requests: {why}")))?;
    let max_duration = units::parse_duration(&args.max_duration)
        .or_else(|why| usage(format!("--max-duration: {why}")))?;
    if max_duration.is_zero() {
        return usage("--max-duration: expected a duration above 0, e.g. 60s".to_string());
    }
    let idle =
        units::parse_duration_or_zero(&args.idle).or_else(|why| usage(format!("--idle: {why}")))?;
    let start_rate =
        units::parse_rate(&args.start_rate).or_else(|why| usage(format!("--start-rate: {why}")))?;
    if start_rate > max_rate {
        return usage(format!(
            "--start-rate {}: above --max-rate {}",
            args.start_rate, args.max_rate
        ));
    }
    let step = units::parse_duration(&args.step).or_else(|why| usage(format!("--step: {why}")))?;
    if step < Duration::from_millis(100) {
        return usage(format!(
            "--step {}: expected at least 100ms (a step must hold several requests)",
            args.step
        ));
    }
    let expect_rate = match &args.expect_rate {
        Some(text) => {
            Some(units::parse_rate(text).or_else(|why| usage(format!("--expect-rate: {why}")))?)
        }
        None => None,
    };
    let expect_burst = match &args.expect_burst {
        Some(text) => Some(
            units::parse_count(text).or_else(|why| usage(format!("--expect-burst: {why}")))? as f64,
        ),
        None => None,
    };
    let count = |flag: &str, text: &Option<String>| -> Result<Option<f64>, UsageError> {
        text.as_ref()
            .map(|text| {
                units::parse_count(text)
                    .map(|n| n as f64)
                    .or_else(|why| usage(format!("{flag}: {why}")))
            })
            .transpose()
    };
    let expect_model = match &args.expect_model {
        Some(text) => Some(Limiter::parse(text).ok_or_else(|| {
            UsageError(format!(
                "--expect-model: expected one of {}",
                Limiter::ALL
                    .iter()
                    .filter(|model| **model != Limiter::Unknown)
                    .map(|model| model.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?),
        None => None,
    };
    let expect_window_s = match &args.expect_window {
        Some(text) => Some(
            units::parse_duration(text)
                .or_else(|why| usage(format!("--expect-window: {why}")))?
                .as_secs_f64(),
        ),
        None => None,
    };
    let tolerance = units::parse_percent(&args.tolerance)
        .or_else(|why| usage(format!("--tolerance: {why}")))?;
    if tolerance <= 0.0 || tolerance >= 1.0 {
        return usage(format!(
            "--tolerance {}: expected a share between 0% and 100%, e.g. 10%",
            args.tolerance
        ));
    }
    let mut load_args = args.load.clone();
    load_args.classify = rules(&args.load.classify);
    let mut load = crate::cli::load::load_plan(&load_args)?;
    load.pacer = Some(Arc::new(Pacer::new(
        max_rate.floor().max(1.0) as u64,
        Duration::from_secs(1) + PACER_MARGIN,
    )));
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
        expect_model,
        expect_concurrency: count("--expect-concurrency", &args.expect_concurrency)?,
        expect_window_limit: count("--expect-window-limit", &args.expect_window_limit)?,
        expect_window_s,
        expect_queue_depth: count("--expect-queue-depth", &args.expect_queue_depth)?,
        tolerance,
        honour_retry_after: !args.ignore_retry_after,
    })
}
