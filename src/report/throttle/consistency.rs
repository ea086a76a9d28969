//! The throttle probe's section agrees with the run (a saved report's
//! consistency).
use crate::report::consistency::{
    at_most, equal, flip, longest_ms, share, sum, within, wrong, Found, MAX_SECONDS,
};
use crate::report::{Report, ThrottleSection};

/// The probe's estimates, facts and steps: finite, within its bounds, each
/// estimate inside its interval.
pub(super) fn consistent(report: &Report, throttle: &ThrottleSection, at: &str) -> Found {
    share(at, "confidence", throttle.confidence)?;
    estimates(throttle, at)?;
    within(at, "max_rate_per_s", throttle.max_rate_per_s, 0.0, 1e12)?;
    within(
        at,
        "max_duration_s",
        throttle.max_duration_s,
        0.0,
        MAX_SECONDS,
    )?;
    within(at, "idle_s", throttle.idle_s, 0.0, MAX_SECONDS)?;
    within(at, "tolerance", throttle.tolerance, 0.0, 1e6)?;
    let (fastest, last_s) = throttle_bounds(report, throttle);
    let lockout = throttle.lockout;
    let optional = [
        ("knee_rate_per_s", throttle.knee_rate_per_s, fastest),
        // The safe rate is the knee's lower bound.
        (
            "safe_rate_per_s",
            throttle.safe_rate_per_s,
            throttle.knee_rate_per_s.unwrap_or(fastest),
        ),
        ("overload_rate_per_s", throttle.overload_rate_per_s, fastest),
        ("first_throttle_s", throttle.first_throttle_s, last_s),
        ("drain_start_s", throttle.drain_start_s, last_s),
        ("retry_after_s", throttle.retry_after_s, MAX_SECONDS),
        ("backend_ms", throttle.backend_ms, longest_ms(report)),
        ("silent_share", throttle.silent_share, 1.0),
        ("lockout.silent_s", lockout.map(|l| l.silent_s), last_s),
        (
            "lockout.recognised_at_s",
            lockout.map(|l| l.recognised_at_s),
            last_s,
        ),
        (
            "lockout.recovered_after_s",
            lockout.and_then(|l| l.recovered_after_s),
            last_s,
        ),
    ];
    for (name, value, high) in optional {
        if let Some(value) = value {
            within(at, name, value, 0.0, high)?;
        }
    }
    for parameter in crate::throttle::gate::Parameter::ALL {
        if let Some(expected) = throttle.expected(parameter) {
            within(at, parameter.expect_field(), expected, 0.0, 1e12)?;
        }
    }
    equal(
        at,
        "requests_used",
        throttle.requests_used,
        u128::from(report.run.requests_sent),
        "run.requests_sent is",
    )?;
    steps(report, throttle, at)?;
    throttle_series(report, throttle, at)
}

/// Each estimate finite, not negative, and inside its interval.
fn estimates(throttle: &ThrottleSection, at: &str) -> Found {
    for (field, _, _, e) in throttle.parameters() {
        let name = |part: &str| format!("{field}.{part}");
        within(at, &name("estimate"), e.estimate, 0.0, 1e12)?;
        within(at, &name("ci_low"), e.ci_low, 0.0, 1e12)?;
        within(at, &name("ci_high"), e.ci_high, 0.0, 1e12)?;
        if e.ci_low > e.estimate || e.estimate > e.ci_high {
            return wrong(
                at,
                &name("estimate"),
                format!(
                    "{} is outside its interval {}–{}",
                    e.estimate, e.ci_low, e.ci_high
                ),
            );
        }
    }
    Ok(())
}

/// The rates the probe offered, when, and what came of each.
fn steps(report: &Report, throttle: &ThrottleSection, at: &str) -> Found {
    let (fastest, last_s) = throttle_bounds(report, throttle);
    for (index, step) in throttle.steps.iter().enumerate() {
        let name = |part: &str| format!("steps[{index}].{part}");
        within(at, &name("rate_per_s"), step.rate_per_s, 0.0, fastest)?;
        within(at, &name("start_s"), step.start_s, 0.0, last_s)?;
        within(at, &name("end_s"), step.end_s, step.start_s, last_s)?;
        let answered = u128::from(step.admitted) + u128::from(step.throttled);
        let offered = format!("the step's {} offered", step.offered);
        at_most(
            at,
            &name("admitted"),
            answered,
            step.offered.into(),
            &offered,
        )?;
    }
    Ok(())
}

/// The probe never offers more than its `--max-rate`, and every time it
/// reports is within the run (seconds from the first request sent).
fn throttle_bounds(report: &Report, throttle: &ThrottleSection) -> (f64, f64) {
    let fastest = throttle.max_rate_per_s * (1.0 + 1e-9);
    let last_s = report.run.wall_s.max(report.run.duration_s) + 1.0;
    (fastest, last_s)
}

/// The probe's per-second series: one length, and what was admitted and
/// refused in a second never more than was offered in it.
fn throttle_series(report: &Report, throttle: &ThrottleSection, at: &str) -> Found {
    let series = &throttle.series;
    if series.interval_s != 1.0 {
        return wrong(
            at,
            "series.interval_s",
            format!("{}, but series are per second (1)", series.interval_s),
        );
    }
    let length = series.offered.len();
    let others = [
        ("admitted", series.admitted.len()),
        ("throttled", series.throttled.len()),
    ];
    for (name, len) in others {
        if len != length {
            return wrong(
                at,
                &format!("series.{name}"),
                format!("{len} seconds long, but series.offered is {length}"),
            );
        }
    }
    if !series.admitted_latency_ms.is_empty() && series.admitted_latency_ms.len() != length {
        return wrong(
            at,
            "series.admitted_latency_ms",
            format!(
                "{} seconds long, but series.offered is {length}",
                series.admitted_latency_ms.len()
            ),
        );
    }
    let offered = sum(&series.offered);
    if offered > u128::from(throttle.requests_used) {
        return Err(flip(
            at,
            "series.offered",
            offered,
            "requests_used",
            throttle.requests_used,
        ));
    }
    for second in 0..length {
        let answered = u128::from(series.admitted[second]) + u128::from(series.throttled[second]);
        if answered > u128::from(series.offered[second]) {
            return wrong(
                at,
                &format!("series.offered[{second}]"),
                format!(
                    "{}, fewer than the {answered} admitted and throttled in that second",
                    series.offered[second]
                ),
            );
        }
    }
    let longest = longest_ms(report);
    if let Some((second, bad)) = series
        .admitted_latency_ms
        .iter()
        .enumerate()
        .find(|(_, ms)| !(ms.is_finite() && **ms >= 0.0 && **ms <= longest))
    {
        return wrong(
            at,
            &format!("series.admitted_latency_ms[{second}]"),
            format!("{bad} ms"),
        );
    }
    Ok(())
}
