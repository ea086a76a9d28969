//! The canary's and the throttle probe's sections agree with the run.
use super::{at_most, equal, flip, longest_ms, share, sum, within, wrong, Found, MAX_SECONDS};
use crate::report::{CanaryMergeInputs, CanarySection, Report, ThrottleSection};

/// The canary's plan and counts: levels and shares in 0–1, expected shares
/// adding up to 1, no more responses seen than completed.
pub(super) fn canary(report: &Report, canary: &CanarySection, at: &str) -> Found {
    share(at, "alpha", canary.alpha)?;
    share(at, "power", canary.power)?;
    for (name, value) in &canary.expect {
        share(at, &format!("expect.{name}"), *value)?;
    }
    let total: f64 = canary.expect.values().sum();
    if (total - 1.0).abs() > 1e-6 {
        return wrong(at, "expect", format!("the shares add up to {total}, not 1"));
    }
    for (name, value) in &canary.tolerance {
        share(at, &format!("tolerance.{name}"), *value)?;
    }
    for (name, value) in [
        ("max_unclassified", canary.max_unclassified),
        (
            "assumed_baseline_error_rate",
            canary.assumed_baseline_error_rate,
        ),
        (
            "observed_baseline_error_rate",
            canary.observed_baseline_error_rate,
        ),
        ("connection_dispersion_p", canary.connection_dispersion_p),
        ("second_dispersion_p", canary.second_dispersion_p),
    ] {
        if let Some(value) = value {
            share(at, name, value)?;
        }
    }
    within(
        at,
        "split_expected_sequential",
        canary.split_expected_sequential,
        0.0,
        1e15,
    )?;
    let seen = u128::from(canary.classified) + u128::from(canary.unclassified);
    if seen > u128::from(report.run.requests_completed) {
        return wrong(
            at,
            "classified",
            format!(
                "classified and unclassified add up to {seen}, more than run.requests_completed ({})",
                report.run.requests_completed
            ),
        );
    }
    match &canary.merge_inputs {
        Some(inputs) => merge_inputs(report, canary, inputs, &format!("{at}merge_inputs.")),
        None => Ok(()),
    }
}

/// What a canary shard saves for the merge: the health spec's levels and
/// margins, and latency blocks whose sums a run's latencies could make.
fn merge_inputs(
    report: &Report,
    canary: &CanarySection,
    inputs: &CanaryMergeInputs,
    at: &str,
) -> Found {
    if let Some(health) = &inputs.health {
        share(at, "health.alpha", health.alpha)?;
        share(at, "health.power", health.power)?;
        share(at, "health.max_error_increase", health.max_error_increase)?;
        share(at, "health.assumed_error_rate", health.assumed_error_rate)?;
        let (field, margin) = match health.max_latency_increase {
            crate::canary::health::LatencyMargin::Relative(f) => {
                ("health.max_latency_increase.relative", f)
            }
            crate::canary::health::LatencyMargin::Absolute { ms } => {
                ("health.max_latency_increase.ms", ms)
            }
        };
        within(at, field, margin, 0.0, 1e9)?;
    }
    let longest = longest_ms(report);
    for (variant, name) in canary.expect.keys().enumerate() {
        let blocks = inputs
            .latency_blocks
            .iter()
            .enumerate()
            .filter_map(|(bin, blocks)| blocks.get(variant).map(|b| (bin, b)));
        let count = sum(blocks.clone().map(|(_, b)| &b.count));
        let class = report.classes.get(name).map_or(0, |c| c.count);
        if count > u128::from(class) {
            return wrong(
                at,
                "latency_blocks",
                format!("{count} latencies of '{name}', more than its {class} responses"),
            );
        }
        for (bin, block) in blocks {
            let field = |f: &str| format!("latency_blocks[{bin}][{variant}].{f}");
            let n = block.count as f64;
            // Latencies are at most the run's length, and (in ms, from
            // µs clocks) at least 1 µs: ln ms within ±50 is generous.
            within(at, &field("sum_ms"), block.sum_ms, 0.0, n * longest)?;
            within(
                at,
                &field("sum_sq_ms"),
                block.sum_sq_ms,
                0.0,
                n * longest * longest,
            )?;
            within(
                at,
                &field("sum_ln_ms"),
                block.sum_ln_ms,
                -50.0 * n,
                50.0 * n,
            )?;
            within(
                at,
                &field("sum_sq_ln_ms"),
                block.sum_sq_ln_ms,
                0.0,
                2500.0 * n,
            )?;
        }
    }
    Ok(())
}

/// The probe's estimates, facts and steps: finite, within its bounds, each
/// estimate inside its interval.
pub(super) fn throttle(report: &Report, throttle: &ThrottleSection, at: &str) -> Found {
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
